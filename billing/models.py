from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from billing.choices import (
    FLAG_RESOURCES,
    BillingAction,
    BillingOutcome,
    BillingPeriod,
    BillingRunStatus,
    Currency,
    DocumentKind,
    Language,
    LedgerEntryKind,
    NotificationKind,
    PaymentStatus,
    ProductType,
    ResourceKind,
    ServiceStatus,
    SuspendReason,
)
from billing.constants import QUANTITY_MAX
from billing.constraints import ConstraintMessages
from billing.secret_fields import SecretField
from billing.stored_text import StoredTextField
from billing.username_template import validate_username_template
from billing.validators import validate_few_lines, validate_one_line

MONEY = {"max_digits": 12, "decimal_places": 2}
NOT_NEGATIVE = [MinValueValidator(Decimal("0"))]


class Client(models.Model):
    """The paying account: it holds the balance and owns services; Django users act for it."""

    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("contact email"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.RUB)
    language = models.CharField(_("language"), max_length=5, choices=Language.choices, default=Language.EN)
    # Billing details, copied onto every document issued to the client (changing them later changes no issued document).
    # Bounded: it is printed on every later document, and a PDF's layout time grows with its lines.
    address = models.TextField(_("billing address"), max_length=500, blank=True, validators=[validate_few_lines])
    tax_id = models.CharField(_("tax ID"), max_length=50, blank=True)
    tax_exempt = models.BooleanField(_("exempt from tax"), default=False)
    tax_exempt_note = models.CharField(
        _("why exempt"), max_length=200, blank=True, help_text=_("Printed on the client's invoices, e.g. “Reverse charge”.")
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="clients", blank=True, verbose_name=_("users"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        ordering = ["name", "pk"]

    def __str__(self):
        return self.name


class LedgerEntry(ConstraintMessages, models.Model):
    """One movement of a client's money; the balance is the sum of the client's entries."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="ledger_entries", verbose_name=_("client"))
    kind = models.CharField(_("kind"), max_length=16, choices=LedgerEntryKind.choices)
    # Credits are positive, charges negative.
    amount = models.DecimalField(_("amount"), **MONEY)
    reference = StoredTextField(_("reference"), max_length=200, blank=True)
    # Set by callers that may repeat themselves (a retried payment): the second entry is refused.
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, null=True, blank=True, unique=True)
    # The invoice, credit note or receipt that documents this movement (created in the same transaction).
    document = models.ForeignKey(
        "Document", on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries", verbose_name=_("document")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    constraint_messages = {
        "ledgerentry_amount_sign_matches_kind": _("A top-up or a refund must be positive, a charge negative, and an adjustment not zero."),
    }

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                name="ledgerentry_amount_sign_matches_kind",
                condition=(
                    (Q(kind__in=[LedgerEntryKind.TOPUP, LedgerEntryKind.REFUND]) & Q(amount__gt=0))
                    | (Q(kind=LedgerEntryKind.CHARGE) & Q(amount__lt=0))
                    | (Q(kind=LedgerEntryKind.ADJUSTMENT) & ~Q(amount=0))
                ),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.amount} ({self.client})"


class TariffPlan(ConstraintMessages, models.Model):
    """What a client can order: a product on a processing module, its prices and resources."""

    name = models.CharField(_("Name"), max_length=200, help_text=_("Shown on the order form and the shop-window."))
    description = models.TextField(_("description"), blank=True)
    product_type = models.CharField(_("Product type"), max_length=16, choices=ProductType.choices)
    processing_module = models.ForeignKey(
        "provisioning.ProcessingModule", on_delete=models.PROTECT, related_name="tariffs", verbose_name=_("Processing module")
    )
    account_template = models.CharField(
        _("Account template"),
        max_length=100,
        validators=[validate_one_line],
        help_text=_(
            "The ISPmanager user template (Settings → Templates) accounts are created from. If it does "
            "not exist, it is created in ISPmanager with this name and unlimited resources. Resources "
            "set on this tariff override the template's values."
        ),
    )
    username_template = models.CharField(
        _("Username template"),
        max_length=64,
        default="user@ID@",
        validators=[validate_username_template],
        help_text=_(
            "How the ISPmanager login is made. Macros: @USERNAME@ (the ordering user's login), "
            "@DOMAIN@ (service domain), @ID@ (service id), @ACCOUNT_ID@ (client id). "
            "Example: user@ID@ for service 117 gives user117."
        ),
    )
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices, default=Currency.RUB)
    setup_fee = models.DecimalField(_("setup fee"), **MONEY, default=Decimal("0"), validators=NOT_NEGATIVE)
    is_visible = models.BooleanField(_("shown in the shop-window"), default=True)
    is_enabled = models.BooleanField(_("can be ordered"), default=True)
    allow_dedicated_ip = models.BooleanField(_("dedicated IPs may be ordered"), default=False)
    allowed_changes = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="+",
        verbose_name=_("may be changed to"),
        help_text=_("Leave empty to allow any visible tariff of the same product type on the same processing module."),
    )
    ordering = models.PositiveIntegerField(_("order in lists"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    constraint_messages = {
        "tariffplan_setup_fee_not_negative": _("The setup fee cannot be negative."),
    }

    class Meta:
        verbose_name = _("tariff plan")
        verbose_name_plural = _("tariff plans")
        ordering = ["ordering", "pk"]
        constraints = [
            models.CheckConstraint(name="tariffplan_setup_fee_not_negative", condition=Q(setup_fee__gte=0)),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        module = getattr(self, "processing_module", None) if self.processing_module_id else None
        if module and self.product_type and module.product_type != self.product_type:
            raise ValidationError(
                {
                    "processing_module": _("%(module)s serves %(served)s, not %(wanted)s: choose a module of this product type.")
                    % {
                        "module": module,
                        "served": module.get_product_type_display(),
                        "wanted": self.get_product_type_display(),
                    }
                }
            )


class TariffPrice(ConstraintMessages, models.Model):
    """The price of a tariff for one billing period."""

    tariff = models.ForeignKey(TariffPlan, on_delete=models.CASCADE, related_name="prices", verbose_name=_("tariff plan"))
    period = models.PositiveSmallIntegerField(_("period"), choices=BillingPeriod.choices)
    price = models.DecimalField(_("price"), **MONEY, validators=NOT_NEGATIVE)
    history = HistoricalRecords()

    constraint_messages = {
        "tariffprice_price_not_negative": _("The price cannot be negative."),
    }

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("prices per period")
        ordering = ["period"]
        constraints = [
            models.UniqueConstraint(fields=["tariff", "period"], name="tariffprice_one_per_period"),
            models.CheckConstraint(name="tariffprice_price_not_negative", condition=Q(price__gte=0)),
        ]

    def __str__(self):
        return f"{self.get_period_display()}: {self.price}"


class TariffResource(ConstraintMessages, models.Model):
    """A resource of a tariff: how much the price includes and what each extra unit costs."""

    tariff = models.ForeignKey(TariffPlan, on_delete=models.CASCADE, related_name="resources", verbose_name=_("tariff plan"))
    kind = models.CharField(_("resource"), max_length=32, choices=ResourceKind.choices)
    included = models.PositiveIntegerField(_("included"), default=0)
    unit_price = models.DecimalField(
        _("price per extra unit"), **MONEY, default=Decimal("0"), validators=NOT_NEGATIVE, help_text=_("Per unit and month.")
    )
    max_quantity = models.PositiveIntegerField(
        _("maximum"), null=True, blank=True, help_text=_("The most a service may have, included units counted; empty = no limit.")
    )
    history = HistoricalRecords()

    constraint_messages = {
        "tariffresource_unit_price_not_negative": _("The price per extra unit cannot be negative."),
        "tariffresource_max_not_below_included": _("The maximum cannot be below the included amount."),
    }

    class Meta:
        verbose_name = _("resource")
        verbose_name_plural = _("resources")
        ordering = ["kind"]
        constraints = [
            models.UniqueConstraint(fields=["tariff", "kind"], name="tariffresource_kind_once_per_tariff"),
            models.CheckConstraint(name="tariffresource_unit_price_not_negative", condition=Q(unit_price__gte=0)),
            models.CheckConstraint(
                name="tariffresource_max_not_below_included",
                condition=Q(max_quantity__isnull=True) | Q(max_quantity__gte=models.F("included")),
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.included}"

    def clean(self):
        errors = {}
        if self.max_quantity is not None and self.included is not None and self.max_quantity < self.included:
            errors["max_quantity"] = _("The maximum cannot be below the included amount (%(included)d).") % {"included": self.included}
        for name in ("included", "max_quantity"):
            if (value := getattr(self, name)) is not None and value > QUANTITY_MAX:
                errors[name] = _("Enter at most %(max)d.") % {"max": QUANTITY_MAX}
        if self.kind in FLAG_RESOURCES:
            if self.included is not None and self.included > 1:
                errors["included"] = _("%(kind)s is on or off: enter 0 or 1.") % {"kind": self.get_kind_display()}
            if self.max_quantity is not None and self.max_quantity > 1:
                errors["max_quantity"] = _("%(kind)s is on or off: enter 0 or 1.") % {"kind": self.get_kind_display()}
        if errors:
            raise ValidationError(errors)


class Service(ConstraintMessages, models.Model):
    """A client's ordered product: one account in the tariff's panel."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="services", verbose_name=_("client"))
    tariff = models.ForeignKey(TariffPlan, on_delete=models.PROTECT, related_name="services", verbose_name=_("tariff plan"))
    # Changed only through billing.services.service_status_change, which writes the audit row.
    status = models.CharField(_("status"), max_length=16, choices=ServiceStatus.choices, default=ServiceStatus.ORDERED, db_index=True)
    suspend_reason = models.CharField(_("suspend reason"), max_length=16, choices=SuspendReason.choices, blank=True)
    # When the current suspension took effect: deletion for non-payment counts its days from here.
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True, db_index=True)
    domain = models.CharField(_("domain"), max_length=253, blank=True)
    period = models.PositiveSmallIntegerField(_("period"), choices=BillingPeriod.choices, default=BillingPeriod.MONTH)
    # When the first period started (the account was first created): every period ends on its day of the month.
    period_anchor = models.DateTimeField(_("billing anchor"), null=True, blank=True)
    expires_at = models.DateTimeField(_("paid until"), null=True, blank=True, db_index=True)
    auto_renew = models.BooleanField(_("auto-renew"), default=True, help_text=_("Renew from the balance at the end of each period."))
    ordered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("ordered by")
    )
    # What the order cost, computed on the server when it was placed: the price of each period
    # (tariff and extra resources) and the one-off setup fee due with the first payment.
    price = models.DecimalField(_("price per period"), **MONEY, default=Decimal("0"), validators=NOT_NEGATIVE)
    setup_fee = models.DecimalField(_("setup fee"), **MONEY, default=Decimal("0"), validators=NOT_NEGATIVE)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    panel_username = models.CharField(_("panel username"), max_length=32, blank=True, db_index=True)
    panel_password = SecretField(_("panel password"), max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    constraint_messages = {
        "service_money_not_negative": _("The price and the setup fee cannot be negative."),
    }

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["-pk"]
        constraints = [
            models.CheckConstraint(name="service_money_not_negative", condition=Q(price__gte=0) & Q(setup_fee__gte=0)),
        ]

    def __str__(self):
        return f"#{self.pk} {self.tariff} {self.domain}".strip()

    @property
    def first_payment(self) -> Decimal:
        return self.price + self.setup_fee


class ServiceResource(models.Model):
    """How much of one resource a service has: the tariff's included amount plus what was ordered."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="resources", verbose_name=_("service"))
    kind = models.CharField(_("resource"), max_length=32, choices=ResourceKind.choices)
    quantity = models.PositiveIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("service resource")
        verbose_name_plural = _("service resources")
        ordering = ["kind"]
        constraints = [models.UniqueConstraint(fields=["service", "kind"], name="serviceresource_kind_once_per_service")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.quantity}"


class ServiceStatusChange(models.Model):
    """Audit row: who moved a service from one status to another, when and why."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="status_changes", verbose_name=_("service"))
    from_status = models.CharField(_("from"), max_length=16, choices=ServiceStatus.choices)
    to_status = models.CharField(_("to"), max_length=16, choices=ServiceStatus.choices)
    reason = StoredTextField(_("why"), blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("who")
    )
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.from_status} → {self.to_status}"


class Payment(ConstraintMessages, models.Model):
    """Money a client sends through a payment gateway; once paid it is a top-up in the ledger."""

    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="payments", verbose_name=_("client"))
    gateway = models.CharField(_("payment method"), max_length=32)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    status = models.CharField(_("status"), max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING, db_index=True)
    # What the client quotes in a bank transfer, and what a gateway's callback names.
    reference = models.CharField(_("payment reference"), max_length=40, unique=True)
    external_id = models.CharField(_("gateway's id"), max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("created by")
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("confirmed by")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)

    constraint_messages = {
        "payment_amount_positive": _("The amount must be greater than zero."),
    }

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(name="payment_amount_positive", condition=Q(amount__gt=0))]

    def __str__(self):
        return f"{self.reference}: {self.amount} {self.currency}"


class EncryptionKeyCheck(models.Model):
    """A known value encrypted with the keys in use: start-up checks the configured keys still read it."""

    token = SecretField(_("token"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("encryption key check")
        verbose_name_plural = _("encryption key checks")

    def __str__(self):
        return f"#{self.pk}"


class BillingRun(ConstraintMessages, models.Model):
    """One daily billing run for a calendar date: what it renewed, told, suspended and deleted.

    A real run has one row per date, reused when the date is run again (after a crash it finishes the
    rest). The lease says the run is alive: another process refuses to start the date while it lasts.
    """

    day = models.DateField(_("date"), db_index=True)
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=BillingRunStatus.choices, default=BillingRunStatus.RUNNING)
    worker = models.CharField(_("worker"), max_length=200, blank=True)
    started_at = models.DateTimeField(_("started at"))
    lease_until = models.DateTimeField(_("lease until"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    renewed = models.PositiveIntegerField(_("renewed"), default=0)
    notified = models.PositiveIntegerField(_("notified"), default=0)
    suspended = models.PositiveIntegerField(pgettext_lazy("billing run", "suspended"), default=0)
    resumed = models.PositiveIntegerField(_("resumed"), default=0)
    deleted = models.PositiveIntegerField(_("deleted"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)

    constraint_messages = {"billingrun_one_real_run_per_day": _("There is already a billing run for this date.")}

    class Meta:
        verbose_name = _("billing run")
        verbose_name_plural = _("billing runs")
        ordering = ["-day", "-pk"]
        constraints = [models.UniqueConstraint(fields=["day"], condition=Q(dry_run=False), name="billingrun_one_real_run_per_day")]

    def __str__(self):
        return f"{self.day} ({_('dry run')})" if self.dry_run else str(self.day)


class BillingRunItem(models.Model):
    """What a billing run did to one service, would have done (dry run), or could not do and why."""

    run = models.ForeignKey(BillingRun, on_delete=models.CASCADE, related_name="items", verbose_name=_("billing run"))
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="billing_items", verbose_name=_("service"))
    action = models.CharField(_("action"), max_length=16, choices=BillingAction.choices)
    outcome = models.CharField(_("outcome"), max_length=16, choices=BillingOutcome.choices)
    message = StoredTextField(pgettext_lazy("billing run item", "details"), blank=True)
    created_at = models.DateTimeField(_("when"), auto_now=True)

    class Meta:
        verbose_name = _("billing run item")
        verbose_name_plural = _("billing run items")
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["run", "service", "action"], name="billingrunitem_once_per_run")]

    def __str__(self):
        return f"{self.get_action_display()} #{self.service_id}: {self.get_outcome_display()}"


class Notification(models.Model):
    """An email to a client about its service, recorded when decided and sent after the commit."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("client"))
    service = models.ForeignKey(
        Service, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications", verbose_name=_("service")
    )
    kind = models.CharField(pgettext_lazy("notification", "kind"), max_length=16, choices=NotificationKind.choices)
    # Names what the notice is about (kind, service, date or period): the same notice is never made twice.
    key = models.CharField(_("key"), max_length=100, unique=True)
    day = models.DateField(_("date"))
    # What the email's text needs, stored as values and rendered in the client's language when sent.
    params = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.service_id or '-'} {self.day}"


class DocumentSequence(models.Model):
    """The next number of a series in a year, taken under a row lock in the transaction that issues the document."""

    series = models.CharField(_("series"), max_length=16)
    year = models.PositiveSmallIntegerField(_("year"))
    next_number = models.PositiveIntegerField(_("next number"), default=1)

    class Meta:
        verbose_name = _("document numbering")
        verbose_name_plural = _("document numbering")
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="documentsequence_one_row_per_series_and_year")]

    def __str__(self):
        return f"{self.series} {self.year}: {self.next_number}"


class DocumentImmutable(Exception):
    """An issued document was about to be changed: corrections are credit notes."""


class IssuedQuerySet(models.QuerySet):
    """Rows of issued documents: a bulk update may only record that a document was emailed."""

    def update(self, **kwargs):
        if set(kwargs) - {"emailed_at"}:
            raise DocumentImmutable(f"issued documents cannot be changed: {', '.join(sorted(kwargs))}")
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        raise DocumentImmutable("issued documents cannot be changed")

    def delete(self):
        raise DocumentImmutable("issued documents cannot be deleted")


class Document(models.Model):
    """An issued invoice, credit note or receipt: numbered, with the issuer's and the client's details as they were, never changed."""

    kind = models.CharField(pgettext_lazy("document", "kind"), max_length=16, choices=DocumentKind.choices)
    number = models.CharField(_("number"), max_length=40, unique=True)
    series = models.CharField(_("series"), max_length=16)
    year = models.PositiveSmallIntegerField(_("year"))
    sequence_number = models.PositiveIntegerField(_("number in the series"))
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="documents", verbose_name=_("client"))
    service = models.ForeignKey(
        "Service", on_delete=models.PROTECT, null=True, blank=True, related_name="documents", verbose_name=_("service")
    )
    # A credit note names the invoice it corrects.
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections", verbose_name=_("corrects")
    )
    issued_at = models.DateTimeField(_("issued at"), db_index=True)
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    issuer = models.JSONField(_("issuer"), default=dict)
    buyer = models.JSONField(_("buyer"), default=dict)
    tax_rate = models.DecimalField(_("tax rate, %"), max_digits=5, decimal_places=2, default=Decimal("0"))
    prices_include_tax = models.BooleanField(_("prices include tax"), default=False)
    net = models.DecimalField(_("net"), **MONEY)
    tax = models.DecimalField(_("tax"), **MONEY)
    gross = models.DecimalField(_("total"), **MONEY)
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)

    objects = IssuedQuerySet.as_manager()

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["-issued_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["series", "year", "sequence_number"], name="document_one_number_per_series_and_year"),
        ]

    def __str__(self):
        return self.number

    def save(self, *args, **kwargs):
        # Written once; afterwards only the record of its sending may change (also through an instance built with its pk).
        issued = self.pk is not None and type(self)._base_manager.filter(pk=self.pk).exists()
        if issued and set(kwargs.get("update_fields") or ["*"]) - {"emailed_at"}:
            raise DocumentImmutable(f"{self.number} is issued: it cannot be changed (issue a credit note instead)")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise DocumentImmutable(f"{self.number} is issued: it cannot be deleted")


class DocumentLine(models.Model):
    """What a document is for: net, tax and gross rounded per line, so the lines add up to the totals to the cent."""

    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="lines", verbose_name=_("document"))
    description = StoredTextField(_("description"), max_length=300)
    period_start = models.DateField(pgettext_lazy("period", "from"), null=True, blank=True)
    period_end = models.DateField(pgettext_lazy("period", "to"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), **MONEY)
    net = models.DecimalField(_("net"), **MONEY)
    tax = models.DecimalField(_("tax"), **MONEY)
    gross = models.DecimalField(_("amount"), **MONEY)

    objects = IssuedQuerySet.as_manager()

    class Meta:
        verbose_name = _("document line")
        verbose_name_plural = _("document lines")
        ordering = ["document", "pk"]

    def __str__(self):
        return f"{self.document}: {self.description}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise DocumentImmutable(f"a line of {self.document} is issued: it cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise DocumentImmutable(f"a line of {self.document} is issued: it cannot be deleted")


# Models of the API and of webhooks live next to their code; importing them here registers them with the app.
from billing.api.models import ApiToken, IdempotencyRecord  # noqa: E402, F401
from billing.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent  # noqa: E402, F401
