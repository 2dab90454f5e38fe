from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, ngettext_lazy
from django.views.decorators.http import require_POST
from modeltranslation.admin import TranslationAdmin

from billing import (
    admin_auth,  # noqa: F401 - users and groups, with permissions named in the reader's language
    admin_documents,  # noqa: F401 - invoices, credit notes and receipts, read-only, with their PDFs
)
from billing.admin_actions import ReadOnlyMixin, bulk_action
from billing.admin_service_change import ServiceChangeAdminMixin
from billing.api import admin as api_admin  # noqa: F401 - API tokens: made with the secret shown once, revoked
from billing.choices import LedgerEntryKind, PanelAction, ProductType, ResourceKind, ServiceStatus, SuspendReason
from billing.cycle_rules import day_start, local_date, today
from billing.forms import add_service_errors
from billing.models import (
    BillingRun,
    BillingRunItem,
    Client,
    LedgerEntry,
    Notification,
    Payment,
    Service,
    ServiceResource,
    ServiceStatusChange,
    TariffPlan,
    TariffPrice,
    TariffResource,
)
from billing.money import money_format
from billing.notifications import notification_send
from billing.payments import GATEWAYS, gateway_name, payment_cancel, payment_confirm
from billing.periods import billing_zone
from billing.selectors import client_list_with_balance, service_billing_summary
from billing.services import (
    NothingToDo,
    ledger_amount_validate,
    ledger_entry_add,
    order_check,
    order_place,
    service_action_request,
    service_auto_renew_set,
    service_expiry_set,
    service_mark_paid,
    service_pay,
    service_renew,
    service_resources_change,
    service_resources_check,
)
from billing.stored_text import StoredText
from billing.webhooks import admin as webhooks_admin  # noqa: F401 - webhook endpoints (secret shown once), events, deliveries
from provisioning.coremanager.errors import ForeignAccount, ProvisioningError, TransientError
from provisioning.panel_login import panel_login_available, service_panel_login_url

STAFF_LEDGER_KINDS = [(kind.value, kind.label) for kind in LedgerEntryKind if kind != LedgerEntryKind.CHARGE]


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "currency", "language", "balance", "created_at"]
    list_filter = ["currency", "language"]
    search_fields = ["name", "email", "users__username", "users__email"]
    filter_horizontal = ["users"]
    readonly_fields = ["created_at"]
    fieldsets = [
        (None, {"fields": ["name", "email", "currency", "language", "users", "created_at"]}),
        (_("Billing details"), {"fields": ["address", "tax_id", "tax_exempt", "tax_exempt_note"]}),
    ]

    def get_queryset(self, request):
        return client_list_with_balance()

    @admin.display(description=_("balance"), ordering="balance")
    def balance(self, obj):
        return money_format(obj.balance, obj.currency)


class LedgerEntryForm(forms.ModelForm):
    class Meta:
        model = LedgerEntry
        fields = ["client", "kind", "amount", "reference"]
        help_texts = {"amount": _("Positive; an adjustment may be negative.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Charges come from orders, never typed in by hand. A saved entry is only viewed: its form has no fields.
        if "kind" in self.fields:
            self.fields["kind"].choices = STAFF_LEDGER_KINDS

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") and cleaned.get("amount") is not None:
            try:
                ledger_amount_validate(kind=cleaned["kind"], amount=cleaned["amount"])
            except ValidationError as error:
                self.add_error("amount", error)  # said once, next to the amount
        return cleaned


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """Entries are append-only: staff add top-ups, refunds and adjustments, and change nothing."""

    form = LedgerEntryForm
    list_display = ["created_at", "client", "kind", "amount", "reference", "document_link", "created_by"]
    list_filter = ["kind", "client__currency"]
    list_select_related = ["client", "created_by", "document"]
    search_fields = ["client__name", "client__email", "reference"]
    date_hierarchy = "created_at"
    autocomplete_fields = ["client"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        # Viewing an entry also says who added it and when; adding one asks only for what staff type.
        fields = super().get_fields(request, obj)
        return [*fields, "created_by", "created_at"] if obj else fields

    @admin.display(description=_("document"), ordering="document__number")
    def document_link(self, obj):
        if obj.document is None:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:billing_document_change", args=[obj.document_id]), obj.document.number)

    def save_model(self, request, obj, form, change):
        entry = ledger_entry_add(client=obj.client, kind=obj.kind, amount=obj.amount, reference=obj.reference, created_by=request.user)
        obj.pk, obj.created_at, obj.created_by = entry.pk, entry.created_at, entry.created_by


class TariffPriceInline(admin.TabularInline):
    model = TariffPrice
    extra = 0
    min_num = 1

    def get_formset(self, request, obj=None, **kwargs):
        # A tariff without a price cannot be ordered: enforce min_num on the server, not only in the page.
        kwargs["validate_min"] = True
        return super().get_formset(request, obj, **kwargs)


class TariffResourceInline(admin.TabularInline):
    model = TariffResource
    extra = 0


@admin.register(TariffPlan)
class TariffPlanAdmin(TranslationAdmin):
    list_display = ["name", "product_type", "processing_module", "account_template", "currency", "is_visible", "is_enabled", "ordering"]
    list_filter = ["product_type", "processing_module", "is_visible", "is_enabled"]
    list_select_related = ["processing_module"]
    search_fields = ["name", "account_template"]
    inlines = [TariffPriceInline, TariffResourceInline]
    fieldsets = [
        (None, {"fields": ["name", "description", "product_type", "processing_module"]}),
        (
            _("Account in the panel"),
            {
                "fields": ["account_template", "username_template"],
                "description": _(
                    "For External FTP-storage, use an ISPmanager template that forbids domains, databases "
                    "and shell access and limits the number of FTP users."
                ),
            },
        ),
        (_("Price and shop-window"), {"fields": ["currency", "setup_fee", "is_visible", "is_enabled", "allow_dedicated_ip", "ordering"]}),
    ]

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "product_type":
            kwargs["choices"] = ProductType.choices
        return super().formfield_for_choice_field(db_field, request, **kwargs)


class ServiceResourceFormSet(forms.BaseInlineFormSet):
    """A service's resources: new quantities are checked like an order here and applied by service_resources_change."""

    def changed_quantities(self) -> dict:
        return {form.instance.kind: form.cleaned_data["quantity"] for form in self.forms if form.has_changed()}

    def clean(self):
        super().clean()
        if any(self.errors) or not (quantities := self.changed_quantities()):
            return
        try:
            service_resources_check(service=self.instance, quantities=quantities)
        except ValidationError as error:
            by_kind = {form.instance.kind: form for form in self.forms}
            for key, messages_ in getattr(error, "message_dict", {None: error.messages}).items():
                if key in by_kind:
                    by_kind[key].add_error("quantity", messages_)
                else:
                    raise ValidationError(messages_) from None


class ServiceResourceInline(admin.TabularInline):
    """Quantities only: which resources a service has follows from its tariff."""

    model = ServiceResource
    formset = ServiceResourceFormSet
    fields = ["kind", "quantity"]
    readonly_fields = ["kind"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class ServiceStatusChangeInline(admin.TabularInline):
    model = ServiceStatusChange
    extra = 0
    can_delete = False
    fields = readonly_fields = ["created_at", "from_status", "to_status", "reason", "changed_by"]

    def has_add_permission(self, request, obj=None):
        return False


def _panel_action(action, description, done, **options):
    """An admin action asking the panel to do `action` to each selected service."""
    return bulk_action(
        f"request_{action}",
        description,
        lambda service, user: service_action_request(service=service, action=action, by=user, **options),
        done,
    )


class ServiceOrderForm(forms.ModelForm):
    """Staff place an order for a client: priced like the shop's; resources start at the tariff's included amounts."""

    dedicated_ips = forms.IntegerField(label=ResourceKind.DEDICATED_IPV4.label, min_value=0, initial=0, required=False)

    class Meta:
        model = Service
        fields = ["client", "tariff", "period", "domain"]

    def _post_clean(self):
        # The service itself is made by order_place in save_model; its rules show here as form errors.
        if self.errors:
            return
        try:
            order_check(
                client=self.cleaned_data["client"],
                tariff=self.cleaned_data["tariff"],
                period=self.cleaned_data["period"],
                domain=self.cleaned_data["domain"],
                dedicated_ips=self.cleaned_data.get("dedicated_ips") or 0,
                by_staff=True,
            )
        except ValidationError as error:
            add_service_errors(self, error)


class ServiceExpiryFilter(admin.SimpleListFilter):
    """Where services stand in their billing cycle, by the calendar dates of the billing time zone."""

    title = _("expires")
    parameter_name = "expires"

    def lookups(self, request, model_admin):
        return [
            ("7", _("in the next 7 days")),
            ("30", _("in the next 30 days")),
            ("overdue", _("overdue")),
            ("nonpayment", _("suspended for non-payment")),
        ]

    def queryset(self, request, queryset):
        value, now = self.value(), timezone.now()
        if value in ("7", "30"):
            # Not expired yet, and expiring on one of the next N dates (today included).
            until = day_start(today() + timedelta(days=int(value) + 1))
            running = [ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED]
            return queryset.filter(status__in=running, expires_at__gt=now, expires_at__lt=until)
        if value == "overdue":
            return queryset.filter(status=ServiceStatus.ACTIVE, expires_at__lte=now)
        if value == "nonpayment":
            return queryset.filter(status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT)
        return queryset  # no filter, or a value that is none of the above


# How far from today staff may move a paid-until date: a typo of the year is refused, not saved.
EXPIRY_MAX_YEARS = 10


class ServiceExpiryForm(forms.Form):
    """Staff move a service's paid-until date, in the billing time zone, and say why (kept in its history)."""

    expires_at = forms.SplitDateTimeField(label=_("Paid until"), widget=AdminSplitDateTime)
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_expires_at(self):
        value = self.cleaned_data["expires_at"]
        reach = timedelta(days=365 * EXPIRY_MAX_YEARS)
        if not timezone.now() - reach <= value <= timezone.now() + reach:
            raise ValidationError(_("Choose a date within %(years)d years of today."), params={"years": EXPIRY_MAX_YEARS}, code="too_far")
        return value


def _renewed_until(service: Service) -> str:
    return _("renewed until %(date)s.") % {"date": date_format(local_date(service.expires_at))}


@admin.register(Service)
class ServiceAdmin(ServiceChangeAdminMixin, admin.ModelAdmin):
    list_display = ["id", "client", "tariff", "status", "domain", "panel_username", "expires_at", "auto_renew", "created_at"]
    list_filter = ["status", ServiceExpiryFilter, "tariff__product_type", "tariff__processing_module", "suspend_reason", "auto_renew"]
    list_select_related = ["client", "tariff"]
    search_fields = ["=id", "domain", "panel_username", "client__name", "client__email"]
    autocomplete_fields = ["client"]
    raw_id_fields = ["ordered_by"]
    # Status moves only through the guarded transitions; panel credentials only through provisioning.
    readonly_fields = ["status", "suspend_reason", "paid_at", "panel_username", "operations", "created_at", "updated_at"]
    exclude = ["panel_password"]
    inlines = [ServiceResourceInline, ServiceStatusChangeInline]
    actions = [
        bulk_action(
            "pay_from_balance",
            _("Pay from the client's balance"),
            lambda service, user: service_pay(service=service, by=user),
            ngettext_lazy("%(count)d service paid.", "%(count)d services paid.", "count"),
        ),
        bulk_action(
            "mark_paid",
            _("Mark as paid and create the account"),
            lambda service, user: service_mark_paid(service=service, by=user),
            ngettext_lazy("%(count)d service paid.", "%(count)d services paid.", "count"),
        ),
        bulk_action(
            "auto_renew_on",
            _("Turn auto-renew on"),
            lambda service, user: service_auto_renew_set(service=service, enabled=True, by=user),
            ngettext_lazy("Auto-renew turned on for %(count)d service.", "Auto-renew turned on for %(count)d services.", "count"),
        ),
        bulk_action(
            "auto_renew_off",
            _("Turn auto-renew off"),
            lambda service, user: service_auto_renew_set(service=service, enabled=False, by=user),
            ngettext_lazy("Auto-renew turned off for %(count)d service.", "Auto-renew turned off for %(count)d services.", "count"),
        ),
        bulk_action(
            "renew_now",
            _("Renew now (one period) from the client's balance"),
            # One period from the expiry as it is when staff confirm; the message names the new date.
            lambda service, user: service_renew(service=service, periods=1, expected_expiry=service.expires_at, by=user),
            ngettext_lazy("%(count)d service renewed.", "%(count)d services renewed.", "count"),
            done_detail=_renewed_until,
        ),
        bulk_action(
            "suspend_for_abuse",
            _("Suspend for abuse"),
            lambda service, user: service_action_request(
                service=service,
                action=PanelAction.SUSPEND,
                by=user,
                reason=StoredText(gettext_noop("suspended by staff for abuse")),
                suspend_reason=SuspendReason.ABUSE,
            ),
            ngettext_lazy("%(count)d service will be suspended for abuse.", "%(count)d services will be suspended for abuse.", "count"),
        ),
        _panel_action(
            PanelAction.SUSPEND,
            _("Suspend"),
            ngettext_lazy("%(count)d service will be suspended.", "%(count)d services will be suspended.", "count"),
            suspend_reason=SuspendReason.STAFF,
        ),
        _panel_action(
            PanelAction.RESUME,
            _("Resume"),
            ngettext_lazy("%(count)d service will be resumed.", "%(count)d services will be resumed.", "count"),
        ),
        _panel_action(
            PanelAction.CLOSE,
            _("Delete account"),
            ngettext_lazy("%(count)d account will be deleted.", "%(count)d accounts will be deleted.", "count"),
        ),
        _panel_action(
            PanelAction.CHANGE_PASSWORD,
            _("Change panel password"),
            ngettext_lazy("%(count)d password will be changed.", "%(count)d passwords will be changed.", "count"),
        ),
        _panel_action(
            PanelAction.SYNC,
            _("Read state from the panel"),
            ngettext_lazy("%(count)d service will be read from the panel.", "%(count)d services will be read from the panel.", "count"),
        ),
    ]

    def get_actions(self, request):
        # Deleting a service's row would leave its account in the panel: "Delete account" goes through the panel.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return False

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ServiceOrderForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["client", "tariff", "period", "domain", "dedicated_ips"]})]
        return super().get_fieldsets(request, obj)

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # What was ordered and its price are set by order_place; changes go through service functions
        # that validate, reprice and write the audit row (resources: the inline below).
        # The billing cycle's fields move only through the actions and the paid-until page (no raw editing).
        cycle = ["expires_at", "period_anchor", "billing_cycle", "auto_renew", "suspended_at"]
        return [*self.readonly_fields, "client", "tariff", "period", "domain", "price", "setup_fee", "ordered_by", *cycle]

    @admin.display(description=_("billing cycle"))
    def billing_cycle(self, obj):
        summary = service_billing_summary(service=obj)
        parts = []
        if summary.overdue:
            parts.append(_("Overdue: suspended on %(date)s unless paid.") % {"date": date_format(summary.suspend_on)})
        if summary.delete_on:
            parts.append(_("Suspended for non-payment: deleted on %(date)s unless paid.") % {"date": date_format(summary.delete_on)})
        if summary.next_charge_on:
            amount = money_format(summary.next_charge_amount, obj.client.currency)
            parts.append(_("Next charge: %(amount)s on %(date)s.") % {"amount": amount, "date": date_format(summary.next_charge_on)})
        return " ".join(parts) or "-"

    def get_urls(self):
        expiry = path("<path:object_id>/expiry/", self.admin_site.admin_view(self.expiry_view), name="billing_service_expiry")
        panel = path("<path:object_id>/panel/", self.admin_site.admin_view(self.panel_login_view), name="billing_service_panel_login")
        return [expiry, panel, *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["panel_login_available"] = obj is not None and panel_login_available(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @method_decorator(require_POST)
    def panel_login_view(self, request, object_id):
        """Open control panel as the service's client: a one-time key made by this POST, the browser sent to the panel with it."""
        service = self.get_object(request, unquote(object_id))
        if service is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, service):
            raise PermissionDenied
        try:
            return HttpResponseRedirect(service_panel_login_url(service=service, by=request.user))
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
        except TransientError as error:
            message = _("The control panel did not answer; try again in a minute (%(error)s).") % {"error": error}
            self.message_user(request, message, messages.ERROR)
        except ForeignAccount as error:
            message = _("Not opened: the panel's account at this login is not this service's (%(error)s).")
            self.message_user(request, message % {"error": error}, messages.ERROR)
        except ProvisioningError as error:
            self.message_user(request, _("The control panel refused the login key: %(error)s") % {"error": error}, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:billing_service_change", args=[service.pk]))

    def expiry_view(self, request, object_id):
        """The paid-until page: a date and a required reason, applied by service_expiry_set (which writes the history)."""
        service = self.get_object(request, unquote(object_id))
        if service is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, service):
            raise PermissionDenied
        change_url = reverse("admin:billing_service_change", args=[service.pk])
        # Staff type and read the date in the billing time zone, whatever zone their session has.
        with timezone.override(billing_zone()):
            form = ServiceExpiryForm(request.POST if request.method == "POST" else None, initial={"expires_at": service.expires_at})
            if form.is_valid():
                try:
                    service = service_expiry_set(
                        service=service, expires_at=form.cleaned_data["expires_at"], reason=form.cleaned_data["reason"], by=request.user
                    )
                except ValidationError as error:  # missing reason, no running period, or the same date (NothingToDo)
                    add_service_errors(form, error)
                else:
                    moment = date_format(timezone.localtime(service.expires_at), "DATETIME_FORMAT")
                    message = _("Paid until changed to %(date)s; the reason is kept in the service's history.") % {"date": moment}
                    self.message_user(request, message, messages.SUCCESS)
                    return HttpResponseRedirect(change_url)
            context = {
                **self.admin_site.each_context(request),
                "title": _("Change paid-until date"),
                "subtitle": str(service),
                "opts": self.opts,
                "original": service,
                "form": form,
                "media": self.media + form.media,
                "change_url": change_url,
                "zone": billing_zone().key,
            }
            return TemplateResponse(request, "admin/billing/service/expiry_form.html", context).render()

    def save_model(self, request, obj, form, change):
        if change:
            # Every field is read-only here: saving the whole row would only overwrite what the worker changed meanwhile.
            return
        service = order_place(
            client=form.cleaned_data["client"],
            user=None,
            tariff=form.cleaned_data["tariff"],
            period=form.cleaned_data["period"],
            domain=form.cleaned_data["domain"],
            dedicated_ips=form.cleaned_data.get("dedicated_ips") or 0,
            by_staff=True,
        )
        obj.pk = service.pk
        obj.refresh_from_db()

    @admin.display(description=_("operations"))
    def operations(self, obj):
        if not obj.pk:
            return "-"
        url = reverse("admin:provisioning_operation_changelist") + f"?service__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Panel operations of this service"))

    def save_formset(self, request, form, formset, change):
        if formset.model is not ServiceResource:
            return super().save_formset(request, form, formset, change)
        # Not formset.save(): what it would have recorded for the admin's change message.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if not (quantities := formset.changed_quantities()):
            return
        try:
            service = service_resources_change(service=form.instance, quantities=quantities, by=request.user)
        except ValidationError as error:  # the service changed since the form was checked
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return
        formset.changed_objects = [(row.instance, ["quantity"]) for row in formset.forms if row.has_changed()]
        if service.status == ServiceStatus.ORDERED:
            message = _("Resources changed; the order now costs %(price)s per period.")
            self.message_user(request, message % {"price": money_format(service.price, service.client.currency)}, messages.SUCCESS)
        else:
            self.message_user(request, _("Resources changed; the new limits will be sent to the panel."), messages.SUCCESS)


class PaymentMethodFilter(admin.SimpleListFilter):
    """Payments by method, named as the client saw it rather than by its code."""

    title = _("payment method")
    parameter_name = "gateway"

    def lookups(self, request, model_admin):
        return [(code, gateway.name) for code, gateway in GATEWAYS.items()]

    def queryset(self, request, queryset):
        return queryset.filter(gateway=self.value()) if self.value() else queryset


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Top-ups; staff confirm bank transfers when the money has arrived."""

    list_display = ["reference", "client", "method", "amount", "currency", "status", "created_at", "paid_at", "confirmed_by"]
    list_filter = ["status", PaymentMethodFilter, "currency"]
    exclude = ["gateway"]  # shown by its name, as `method`
    list_select_related = ["client", "confirmed_by"]
    search_fields = ["reference", "external_id", "client__name", "client__email"]
    date_hierarchy = "created_at"
    actions = [
        bulk_action(
            "confirm",
            _("Confirm: the money has arrived"),
            lambda payment, user: payment_confirm(payment=payment, by=user),
            ngettext_lazy("%(count)d payment confirmed.", "%(count)d payments confirmed.", "count"),
        ),
        bulk_action(
            "cancel",
            _("Cancel"),
            lambda payment, user: payment_cancel(payment=payment),
            ngettext_lazy("%(count)d payment cancelled.", "%(count)d payments cancelled.", "count"),
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [field.name if field.name != "gateway" else "method" for field in self.model._meta.fields]

    @admin.display(description=_("payment method"), ordering="gateway")
    def method(self, obj):
        return gateway_name(obj.gateway)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BillingRun)
class BillingRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The daily billing runs; what each did to each service is in the run's items (a run may have thousands)."""

    counts = ["renewed", "notified", "suspended", "resumed", "deleted", "failed"]
    list_display = ["day", "dry_run", "status", "started_at", "finished_at", *counts, "items"]
    list_filter = ["status", "dry_run"]
    date_hierarchy = "day"
    readonly_fields = ["items"]

    @admin.display(description=_("items"))
    def items(self, obj):
        url = reverse("admin:billing_billingrunitem_changelist") + f"?run__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("What the run did, service by service"))


@admin.register(BillingRunItem)
class BillingRunItemAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "run", "service", "action", "outcome", "message"]
    list_filter = ["action", "outcome", "run__dry_run"]
    list_select_related = ["run", "service__tariff"]
    search_fields = ["=service__id"]
    # A run's list is opened filtered: counting the whole table as well would only slow it down.
    show_full_result_count = False


class NotificationSentFilter(admin.SimpleListFilter):
    title = _("sent")
    parameter_name = "sent"

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(sent_at__isnull=self.value() == "no")
        return queryset


def _notification_send_again(notification: Notification, user) -> None:
    """Send an unsent notice now (the mail server was down); one a worker sent meanwhile is not sent twice."""
    if not notification_send(notification_id=notification.pk):
        notification.refresh_from_db()
        if notification.sent_at is not None:
            raise NothingToDo(_("It has already been sent."), code="already_sent")
        raise ValidationError(_("It could not be sent: %(error)s") % {"error": notification.error}, code="not_sent")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The notices sent to clients: looked at, never edited; an unsent one may be sent again."""

    list_display = ["created_at", "kind", "client", "service", "day", "sent_at", "error"]
    list_filter = ["kind", NotificationSentFilter]
    list_select_related = ["client", "service__tariff"]
    search_fields = ["client__name", "client__email"]
    date_hierarchy = "created_at"
    actions = [
        bulk_action(
            "send_again",
            _("Send again (unsent ones)"),
            _notification_send_again,
            ngettext_lazy("%(count)d notification sent.", "%(count)d notifications sent.", "count"),
        )
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Changing notifications means sending them again from the list; a notice itself is never edited.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False
