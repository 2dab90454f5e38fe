"""Changing what a service is sold as mid-period: its tariff and resources, with day-exact proration.

    current period = the paid period that holds the change day, calendar days in the billing time zone
    days left      = the current period's end - the change day (the change day counts: the new plan runs all of it)
    periods ahead  = the whole periods paid after the current one (a renewal for several periods)
    amount         = (new price per period - old price per period) * (days left / days in the current period
                     + periods ahead), half-up to the cent: the price of the document's one line
    charged or credited = that document's total (the tax added when prices exclude it), as the preview shows it

The old price is what the service is sold at per period (service.price, what its renewals charged), so a
downgrade never gives back more than was paid even after the tariff's price went up; the new price comes
from the tariff (its price for the service's period plus extra resources). A change sets service.price to
that new price, never to what the change charged, so a second change in a period is priced like the first.
The expiry never moves; the service's price per period becomes the new one for the following renewals.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.choices import DocumentKind, LedgerEntryKind, PanelAction, ResourceKind, ServiceStatus
from billing.constants import MONEY_MAX
from billing.cycle_rules import local_date
from billing.documents import Line, cents, document_draft
from billing.models import Document, Service, ServiceResource, ServiceStatusChange, TariffPlan
from billing.money import money_format
from billing.periods import months_after, months_between
from billing.pricing import tariff_quote
from billing.selectors import client_balance, service_pending_action
from billing.services import InsufficientFunds, NothingToDo, _order_errors, ledger_entry_add, service_action_request
from billing.stored_text import Money, Quantity, StoredText
from billing.webhooks.events import event_record
from billing.webhooks.models import EventType
from billing.webhooks.payloads import service_payload


class ChangeNotCovered(InsufficientFunds):
    """An upgrade the balance does not cover: says what it needs and what the balance holds."""

    def __init__(self, *, needed: Decimal, balance: Decimal, currency: str):
        self.missing, self.needed, self.balance = needed - balance, needed, balance
        message = _("Not enough money on the balance: %(needed)s needed, %(balance)s on the balance. Nothing was changed.") % {
            "needed": money_format(needed, currency),
            "balance": money_format(balance, currency),
        }
        ValidationError.__init__(self, message, code="insufficient_funds")


@dataclass(frozen=True)
class DaysLeft:
    change_day: date
    period_end: date  # the end of the paid time (the expiry's date)
    days_left: int  # in the current period, the change day included
    days_in_period: int  # of the current period
    periods_ahead: int = 0  # whole periods paid after the current one


def days_left(*, service: Service, at=None) -> DaysLeft:
    """Where the change day falls in the service's paid time (see the module's formula)."""
    anchor, step = service.period_anchor, service.period
    day, paid_until = local_date(at or timezone.now()), local_date(service.expires_at)
    if day >= paid_until:
        return DaysLeft(change_day=day, period_end=paid_until, days_left=0, days_in_period=0)
    # Periods end on months counted from the anchor: step back from the expiry to the period holding the change day.
    end_months = months_between(anchor, service.expires_at)
    end, ahead = paid_until, 0
    start = local_date(months_after(anchor, end_months - step))
    while start > day and end_months - step >= step:
        end_months, end, ahead = end_months - step, start, ahead + 1
        start = local_date(months_after(anchor, end_months - step))
    days_in_period = (end - start).days
    return DaysLeft(
        change_day=day,
        period_end=paid_until,
        days_left=min(days_in_period, (end - day).days),
        days_in_period=days_in_period,
        periods_ahead=ahead,
    )


def prorated(difference: Decimal, days: DaysLeft) -> Decimal:
    if not days.days_in_period:
        return Decimal("0.00")
    return cents(difference * days.days_left / days.days_in_period + difference * days.periods_ahead)


@dataclass(frozen=True)
class ChangeQuote:
    tariff: TariffPlan
    quantities: dict  # every resource of the new tariff: its new total
    old_price: Decimal  # per period, what the service is sold at now
    new_price: Decimal
    days: DaysLeft
    amount: Decimal  # signed, the line's price: positive is charged, negative is the downgrade's value
    description: StoredText  # what the invoice line says
    total: Decimal  # signed, the total of the invoice or credit note the change issues: what moves on the balance
    corrects: Document | None = None  # the invoice a credit note corrects

    @property
    def line(self) -> Line:
        return Line(description=self.description, amount=self.amount, period_start=self.days.change_day, period_end=self.days.period_end)

    @property
    def credit(self) -> Decimal:
        """What a downgrade gives back to the balance (0 with BILLING_DOWNGRADE_CREDIT off)."""
        return -self.total if self.total < 0 and settings.BILLING_DOWNGRADE_CREDIT else Decimal("0.00")

    @property
    def charge(self) -> Decimal:
        return max(self.total, Decimal("0.00"))


def tariff_choices(service: Service):
    """The tariffs a service may change to: the tariff's allowed changes, else the visible tariffs of its product on its module."""
    current = service.tariff
    allowed = current.allowed_changes.all()
    if not allowed.exists():
        allowed = TariffPlan.objects.filter(is_visible=True, product_type=current.product_type)
    return (
        allowed.filter(processing_module=current.processing_module_id, is_enabled=True, processing_module__is_enabled=True)
        .exclude(pk=current.pk)
        .order_by("ordering", "pk")
    )


def _price(*, tariff: TariffPlan, period: int, quantities: dict) -> Decimal | None:
    price = next((price.price for price in tariff.prices.all() if price.period == period), None)
    if price is None:
        return None
    return tariff_quote(tariff=tariff, tariff_price=price, period=period, quantities=quantities).price


def _check(service: Service, tariff: TariffPlan, quantities: dict | None) -> tuple[dict, dict]:
    """Validate a change like an order; return the current and the new resource totals."""
    if service.status != ServiceStatus.ACTIVE or service.expires_at is None or service.period_anchor is None:
        message = _("Service #%(id)d is “%(status)s”: only an active service can be changed.")
        raise ValidationError(message % {"id": service.pk, "status": service.get_status_display()}, code="not_now")
    if pending := service_pending_action(service=service):
        message = _("Service #%(id)d is waiting for “%(action)s” in the panel: change it when that is done.")
        raise ValidationError(message % {"id": service.pk, "action": PanelAction(pending).label}, code="busy")
    if tariff.pk != service.tariff_id and not tariff_choices(service).filter(pk=tariff.pk).exists():
        raise ValidationError({"tariff": _("Service #%(id)d cannot be changed to this tariff.") % {"id": service.pk}})
    current = dict(service.resources.values_list("kind", "quantity"))
    new = {resource.kind: max(current.get(resource.kind, resource.included), resource.included) for resource in tariff.resources.all()}
    new.update(quantities or {})
    if tariff.pk == service.tariff_id and all(current.get(kind) == quantity for kind, quantity in new.items()):
        raise NothingToDo(_("The service already has this tariff and these resources: nothing was changed."), code="unchanged")
    # Dedicated IPs as an order checks them (the tariff offers them, the panel is not ISPmanager Lite), and only
    # where the panel operation can take more from IPmanager: refused before anything is charged.
    errors = _order_errors(client=service.client, tariff=tariff, period=service.period, domain=service.domain, quantities=new)
    ip = ResourceKind.DEDICATED_IPV4
    if ip not in errors and new.get(ip, 0) > current.get(ip, 0) and tariff.processing_module.ipmanager_id is None:
        errors[ip] = _("Dedicated IP addresses cannot be added: this service's processing module has no IPmanager integration.")
    if errors:
        raise ValidationError(errors)
    return current, new


def service_change_quote(*, service: Service, tariff: TariffPlan | None = None, quantities: dict | None = None, at=None) -> ChangeQuote:
    """What changing the service to `tariff` (default: its own) with resource `quantities` (totals) costs on the day of `at`.

    Reads only: the preview shown before confirming, and what service_change then books.
    """
    tariff = tariff or service.tariff
    current, new = _check(service, tariff, quantities)
    new_price = _price(tariff=tariff, period=service.period, quantities=new)
    old_price = service.price
    if new_price > MONEY_MAX:
        raise ValidationError(_("The service would cost more than can be billed at once: choose fewer resources."), code="price_too_high")
    days = days_left(service=service, at=at)
    amount = prorated(new_price - old_price, days)
    description = _describe(service, tariff, current, new)
    line, corrects = Line(description=description, amount=amount), None
    if amount < 0:
        total, corrects = _credit(service, line)
    else:
        total = document_draft(client=service.client, kind=DocumentKind.INVOICE, lines=[line]).gross
    return ChangeQuote(
        tariff=tariff,
        quantities=new,
        old_price=old_price,
        new_price=new_price,
        days=days,
        amount=amount,
        description=description,
        total=total,
        corrects=corrects,
    )


_MONEY = DecimalField(max_digits=12, decimal_places=2)


def _credit(service: Service, line: Line) -> tuple[Decimal, Document | None]:
    """A credit's total and the invoice its credit note corrects, so that a refund of that invoice counts it.

    The invoice is the service's latest with that much left to refund (on the invoice's own tax terms), else its
    latest; none for a service never invoiced.
    """
    refunded = Coalesce(Sum("corrections__gross", filter=Q(corrections__kind=DocumentKind.CREDIT_NOTE)), Value(Decimal("0"), _MONEY))
    invoices = (
        Document.objects.filter(kind=DocumentKind.INVOICE, service=service)
        .annotate(left=F("gross") + refunded)
        .order_by("-issued_at", "-pk")
    )
    latest = None
    for invoice in invoices:
        total = document_draft(client=service.client, kind=DocumentKind.CREDIT_NOTE, lines=[line], corrects=invoice).gross
        if -total <= invoice.left:
            return total, invoice
        latest = latest or (total, invoice)
    return latest or (document_draft(client=service.client, kind=DocumentKind.CREDIT_NOTE, lines=[line]).gross, None)


def _describe(service: Service, tariff: TariffPlan, current: dict, new: dict) -> StoredText:
    """What the invoice line says: "T10 → T20" or "T10: resources", then each resource that changes."""
    if tariff.pk != service.tariff_id:
        text = StoredText(gettext_noop("%(old)s → %(new)s"), {"old": service.tariff.name, "new": tariff.name})
    else:
        text = StoredText(gettext_noop("%(tariff)s: resources"), {"tariff": tariff.name})
    for kind, quantity in new.items():
        if current.get(kind, 0) != quantity and kind in ResourceKind.values:
            with translation.override(None):  # the label's msgid, translated when the text is read
                label = StoredText(str(ResourceKind(kind).label))
            params = {"resource": label, "old": Quantity(current.get(kind, 0)), "new": Quantity(quantity)}
            part = StoredText(gettext_noop("%(resource)s %(old)s → %(new)s"), params)
            text = StoredText(gettext_noop("%(first)s; %(next)s"), {"first": text, "next": part})
    return text


def service_change(
    *, service: Service, tariff: TariffPlan | None = None, quantities: dict | None = None, by=None, expected_price: Decimal | None = None
) -> Service:
    """Change a service's tariff and/or resources now: charge or credit the rest of the period, reprice, record, queue the panel.

    One function for the client area and the admin. An upgrade the balance does not cover changes
    nothing (ChangeNotCovered). `expected_price` is the price per period the caller saw: when the
    service's differs, it has changed meanwhile (a double submit) and this is NothingToDo.
    """
    with transaction.atomic():
        locked = Service.objects.select_for_update().select_related("client", "tariff").get(pk=service.pk)
        if expected_price is not None and locked.price != expected_price:
            raise NothingToDo(_("Service #%(id)d has just been changed: nothing was charged.") % {"id": locked.pk}, code="already_changed")
        quote = service_change_quote(service=locked, tariff=tariff, quantities=quantities)
        currency = locked.client.currency
        line = quote.line
        if quote.charge:
            try:
                ledger_entry_add(
                    client=locked.client, kind=LedgerEntryKind.CHARGE, amount=quote.charge, reference=quote.description,
                    created_by=by, lines=[line], service=locked,
                )  # fmt: skip
            except InsufficientFunds as refused:
                balance = client_balance(client=locked.client)
                raise ChangeNotCovered(needed=refused.missing + balance, balance=balance, currency=currency) from None
        elif quote.credit:
            ledger_entry_add(
                client=locked.client, kind=LedgerEntryKind.REFUND, amount=quote.credit, reference=quote.description,
                created_by=by, lines=[line], service=locked, corrects=quote.corrects,
            )  # fmt: skip
        _apply(locked, quote, by=by)
        event_record(EventType.SERVICE_CHANGED, service_payload(locked))
        return locked


def _apply(service: Service, quote: ChangeQuote, *, by) -> None:
    currency = service.client.currency
    old_price = service.price
    service.tariff, service.price = quote.tariff, quote.new_price
    service.save(update_fields=["tariff", "price", "updated_at"])
    service.resources.exclude(kind__in=quote.quantities).delete()
    for kind, quantity in quote.quantities.items():
        ServiceResource.objects.update_or_create(service=service, kind=kind, defaults={"quantity": quantity})
    if quote.charge:
        settled = StoredText(gettext_noop("%(amount)s charged"), {"amount": Money(quote.charge, currency)})
    elif quote.credit:
        settled = StoredText(gettext_noop("%(amount)s credited"), {"amount": Money(quote.credit, currency)})
    else:
        settled = StoredText(gettext_noop("nothing charged or credited"))
    note = StoredText(
        gettext_noop("Changed: %(change)s. Price per period: %(old)s → %(new)s; %(settled)s for the rest of the period."),
        {"change": quote.description, "old": Money(old_price, currency), "new": Money(quote.new_price, currency), "settled": settled},
    )
    status = service.status
    ServiceStatusChange.objects.create(service=service, from_status=status, to_status=status, reason=note, changed_by=by)
    service_action_request(
        service=service, action=PanelAction.SET_LIMITS, by=by, reason=StoredText(gettext_noop("plan or resources changed"))
    )


def service_close_refund(*, service: Service, by=None, at=None):
    """BILLING_REFUND_ON_CLOSE=prorata: credit the whole days after the closing day left in the paid time, with a credit note.

    The same fraction as a change (periods paid ahead included), on the price per period the renewals charge;
    once per service (its key). Called when the account is deleted, in that transaction.
    """
    if settings.BILLING_REFUND_ON_CLOSE != "prorata" or service.expires_at is None or service.period_anchor is None:
        return None
    days = days_left(service=service, at=at)
    unused = DaysLeft(
        change_day=days.change_day + timedelta(days=1),
        period_end=days.period_end,
        days_left=max(0, days.days_left - 1),
        days_in_period=days.days_in_period,
        periods_ahead=days.periods_ahead,
    )
    amount = prorated(service.price, unused)
    if amount <= 0:
        return None
    description = StoredText(gettext_noop("Service #%(id)d: unused days after deletion"), {"id": service.pk})
    line = Line(description=description, amount=-amount, period_start=unused.change_day, period_end=unused.period_end)
    total, corrects = _credit(service, line)
    return ledger_entry_add(
        client=service.client, kind=LedgerEntryKind.REFUND, amount=-total, reference=description, created_by=by,
        lines=[line], service=service, idempotency_key=f"service-{service.pk}-close-refund", corrects=corrects,
    )  # fmt: skip
