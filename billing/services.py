"""Writes of the billing core. Every function here is the one place its rule lives."""

import contextlib
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.choices import (
    FLAG_RESOURCES,
    SERVICE_TRANSITIONS,
    DocumentKind,
    LedgerEntryKind,
    NotificationKind,
    PanelAction,
    ProductType,
    ResourceKind,
    ServiceStatus,
    SuspendReason,
)
from billing.constants import MONEY_MAX, QUANTITY_MAX
from billing.cycle_rules import CycleRules, local_date
from billing.documents import Line, document_draft, document_issue
from billing.models import Client, Document, LedgerEntry, Service, ServiceResource, ServiceStatusChange, TariffPlan
from billing.money import money_format
from billing.notifications import notify
from billing.periods import billing_zone, months_after, months_between
from billing.pricing import tariff_quote
from billing.selectors import client_balance, service_pending_action, service_renewal_quote
from billing.signals import panel_action_requested
from billing.stored_text import Day, Money, Quantity, StoredText
from billing.validators import validate_domain
from billing.webhooks.events import event_record
from billing.webhooks.models import EventType
from billing.webhooks.payloads import service_payload
from provisioning.choices import PENDING_OPERATION_STATUSES

_S = ServiceStatus
# The statuses in which staff or a client may ask the panel for each action.
REQUESTABLE_IN = {
    PanelAction.SUSPEND: {_S.ACTIVE},
    PanelAction.RESUME: {_S.SUSPENDED},
    PanelAction.CLOSE: {_S.ACTIVE, _S.SUSPENDED, _S.FAILED},
    PanelAction.SET_LIMITS: {_S.ACTIVE, _S.SUSPENDED},
    PanelAction.CHANGE_PASSWORD: {_S.ACTIVE, _S.SUSPENDED},
    PanelAction.SYNC: {_S.ACTIVE, _S.SUSPENDED, _S.FAILED},
}
# The status in which an action has nothing left to do.
ALREADY_IN = {PanelAction.SUSPEND: _S.SUSPENDED, PanelAction.RESUME: _S.ACTIVE, PanelAction.CLOSE: _S.DELETED}


class InsufficientFunds(ValidationError):
    def __init__(self, missing: Decimal, currency: str):
        self.missing = missing
        super().__init__(
            _("Not enough money on the balance: %(missing)s more is needed.") % {"missing": money_format(missing, currency)},
            code="insufficient_funds",
        )


class TransitionNotAllowed(ValidationError):
    pass


class NothingToDo(ValidationError):
    """What was asked for already holds (paid, confirmed, requested): nothing was changed, charged or queued.

    A repeat is not a failure: callers that may repeat themselves catch it, staff see it as information.
    """


def ledger_amount_validate(*, kind: str, amount: Decimal) -> None:
    """Top-ups, refunds and charges are positive amounts; an adjustment is signed and not zero.

    Every amount fits the ledger's money column.
    """
    if not amount.is_finite() or abs(amount) > MONEY_MAX:
        raise ValidationError(
            _("Enter an amount of at most %(max)s.") % {"max": number_format(MONEY_MAX, decimal_pos=2, force_grouping=True)}, code="amount"
        )
    if kind == LedgerEntryKind.ADJUSTMENT:
        if amount == 0:
            raise ValidationError(_("An adjustment cannot be zero."), code="amount")
    elif amount <= 0:
        raise ValidationError(_("The amount must be greater than zero."), code="amount")


def ledger_entry_add(
    *,
    client: Client,
    kind: str,
    amount: Decimal,
    reference: StoredText | str = "",
    created_by=None,
    idempotency_key: str | None = None,
    lines: list[Line] | None = None,
    service: Service | None = None,
    corrects: Document | None = None,
) -> LedgerEntry:
    """Add a movement of money, with its document. A charge never takes the balance below zero.

    A charge gets a paid invoice, a refund a credit note (naming the invoice it `corrects`, when there
    is one), a top-up a receipt, in the same transaction: one never exists without the other. `lines`
    say what was sold (default: one line, the reference, for `amount`); with tax added on top of the
    prices, the charge is the invoice's total. With an `idempotency_key`, repeating a call returns
    the first entry instead of adding a second.
    """
    amount = Decimal(amount)
    ledger_amount_validate(kind=kind, amount=amount)
    document_kind = DOCUMENT_OF.get(kind)
    try:
        with transaction.atomic():
            # Entries of one client are written one at a time: a charge sees every earlier
            # top-up and no two charges spend the same money.
            Client.objects.select_for_update().filter(pk=client.pk).first()
            if idempotency_key and (existing := LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()):
                return existing
            draft = None
            if document_kind is not None:
                sign = -1 if kind == LedgerEntryKind.REFUND else 1
                # Without lines, a refund returns that much money; a charge bills that price (tax on top when prices exclude it).
                description = StoredText.of(reference) or _default_line(kind)
                billed = lines or [Line(description, sign * amount, money=kind == LedgerEntryKind.REFUND)]
                draft = document_draft(client=client, kind=document_kind, lines=billed, corrects=corrects)
                amount = abs(draft.gross)
                ledger_amount_validate(kind=kind, amount=amount)
            if kind == LedgerEntryKind.CHARGE:
                balance = client_balance(client=client)
                if balance < amount:
                    raise InsufficientFunds(missing=amount - balance, currency=client.currency)
            document = document_issue(draft=draft, service=service, corrects=corrects) if draft else None
            entry = LedgerEntry.objects.create(
                client=client,
                kind=kind,
                amount=-amount if kind == LedgerEntryKind.CHARGE else amount,
                reference=reference,
                created_by=created_by,
                idempotency_key=idempotency_key,
                document=document,
            )
            if kind == LedgerEntryKind.TOPUP:
                from billing.cycle import money_arrived  # the cycle builds on this module

                money_arrived(client.pk)
            return entry
    except IntegrityError:
        # Another request with the same key won the race; its entry is the answer.
        if idempotency_key:
            return LedgerEntry.objects.get(idempotency_key=idempotency_key)
        raise


# The document each kind of movement gets; an adjustment (staff correcting the balance) gets none.
DOCUMENT_OF = {
    LedgerEntryKind.CHARGE: DocumentKind.INVOICE,
    LedgerEntryKind.REFUND: DocumentKind.CREDIT_NOTE,
    LedgerEntryKind.TOPUP: DocumentKind.RECEIPT,
}
DEFAULT_LINES = {
    LedgerEntryKind.CHARGE: gettext_noop("Charge"),
    LedgerEntryKind.REFUND: gettext_noop("Refund"),
    LedgerEntryKind.TOPUP: gettext_noop("Top-up of the balance"),
}


def _default_line(kind: str) -> StoredText:
    return StoredText(DEFAULT_LINES[kind])


# (from suspended, to) -> the webhook event a status change is; ACTIVE from anything but SUSPENDED is an activation.
STATUS_EVENTS = {
    (False, ServiceStatus.ACTIVE): EventType.SERVICE_ACTIVATED,
    (True, ServiceStatus.ACTIVE): EventType.SERVICE_RESUMED,
    (False, ServiceStatus.SUSPENDED): EventType.SERVICE_SUSPENDED,
    (False, ServiceStatus.DELETED): EventType.SERVICE_DELETED,
    (True, ServiceStatus.DELETED): EventType.SERVICE_DELETED,
}


@transaction.atomic
def service_status_change(*, service: Service, to: str, by=None, reason: StoredText | str = "", suspend_reason: str = "") -> Service:
    """Move a service to another status if the transition table allows it, and write the audit row."""
    locked = Service.objects.select_for_update().get(pk=service.pk)
    current = ServiceStatus(locked.status)
    if to not in SERVICE_TRANSITIONS[current]:
        raise TransitionNotAllowed(
            _("A service cannot go from %(from)s to %(to)s.") % {"from": current.label, "to": ServiceStatus(to).label},
            code="transition",
        )
    was_for_nonpayment = current == ServiceStatus.SUSPENDED and locked.suspend_reason == SuspendReason.NONPAYMENT
    locked.status = to
    locked.suspend_reason = suspend_reason if to == ServiceStatus.SUSPENDED else ""
    locked.suspended_at = timezone.now() if to == ServiceStatus.SUSPENDED else None
    locked.save(update_fields=["status", "suspend_reason", "suspended_at", "updated_at"])
    ServiceStatusChange.objects.create(service=locked, from_status=current, to_status=to, reason=reason, changed_by=by)
    service.status, service.suspend_reason, service.suspended_at = locked.status, locked.suspend_reason, locked.suspended_at
    if to == ServiceStatus.DELETED and current in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED):
        from billing.changes import service_close_refund  # changes build on this module

        service_close_refund(service=locked, by=by)
    _nonpayment_notify(locked, was_for_nonpayment)
    if event := STATUS_EVENTS.get((current == ServiceStatus.SUSPENDED, to)):
        event_record(event, service_payload(locked))
    return locked


def _nonpayment_notify(service: Service, was_for_nonpayment: bool) -> None:
    """Tell the client when non-payment suspended its service, and when that ends: resumed or deleted."""
    moment = timezone.now()
    day = moment.astimezone(billing_zone()).date()
    if service.status == ServiceStatus.SUSPENDED and service.suspend_reason == SuspendReason.NONPAYMENT:
        kind, params = NotificationKind.SUSPENDED, {"delete_on": CycleRules.from_settings().delete_on(day).isoformat()}
    elif was_for_nonpayment and service.status == ServiceStatus.ACTIVE:
        until = service.expires_at and service.expires_at.astimezone(billing_zone()).date().isoformat()
        kind, params = NotificationKind.RESUMED, {"until": until} if until else {}
    elif was_for_nonpayment and service.status == ServiceStatus.DELETED:
        kind, params = NotificationKind.DELETED, {}
    else:
        return
    notify(service=service, kind=kind, key=f"{kind}:{service.pk}:{moment.isoformat()}", day=day, params=params)


def service_resources_fill(*, service: Service) -> None:
    """Give the service every resource of its tariff it does not have yet, at the included amount."""
    have = set(service.resources.values_list("kind", flat=True))
    ServiceResource.objects.bulk_create(
        ServiceResource(service=service, kind=resource.kind, quantity=resource.included)
        for resource in service.tariff.resources.all()
        if resource.kind not in have
    )


@transaction.atomic
def service_mark_paid(*, service: Service, by=None, reason: StoredText | str = "") -> Service:
    """Record that an ordered service is paid for, and ask for its account to be created."""
    locked = Service.objects.select_for_update().get(pk=service.pk)
    if locked.paid_at:
        raise NothingToDo(_("Service #%(id)d is already paid for: nothing was charged.") % {"id": locked.pk}, code="already_paid")
    if locked.status != ServiceStatus.ORDERED:
        raise ValidationError(
            _("Service #%(id)d is “%(status)s”: only an ordered service can be paid for.")
            % {"id": locked.pk, "status": ServiceStatus(locked.status).label},
            code="not_ordered",
        )
    locked.paid_at = timezone.now()
    locked.save(update_fields=["paid_at", "updated_at"])
    service_resources_fill(service=locked)
    service_status_change(service=locked, to=ServiceStatus.PROCESSING, by=by, reason=reason or StoredText(gettext_noop("paid")))
    panel_action_requested.send(sender=Service, service=locked, action=PanelAction.OPEN, by=by, reason=reason, payload={})
    return locked


@transaction.atomic
def service_action_request(
    *, service: Service, action: str, by=None, reason: StoredText | str = "", suspend_reason: str = ""
) -> Service:
    """Ask for a panel action on a service; its status changes only when the panel has done it.

    An unpaid service has nothing in a panel: deleting it is immediate.
    """
    locked = Service.objects.select_for_update().get(pk=service.pk)
    if action == PanelAction.CLOSE and locked.status == ServiceStatus.ORDERED:
        reason = reason or StoredText(gettext_noop("cancelled before payment"))
        return service_status_change(service=locked, to=ServiceStatus.DELETED, by=by, reason=reason)
    staff_suspension = action == PanelAction.SUSPEND and suspend_reason in STAFF_REASONS
    if staff_suspension and (taken_over := _staff_suspension_take_over(locked, suspend_reason, by=by, reason=reason)) is not None:
        return taken_over
    if ALREADY_IN.get(action) == locked.status:
        raise NothingToDo(
            _("Service #%(id)d is already “%(status)s”: nothing to do.") % {"id": locked.pk, "status": ServiceStatus(locked.status).label},
            code="already",
        )
    if service_pending_action(service=locked) == action:
        raise NothingToDo(
            _("“%(action)s” is already on its way to the panel for service #%(id)d.")
            % {"id": locked.pk, "action": PanelAction(action).label},
            code="already_requested",
        )
    if locked.status not in REQUESTABLE_IN[action]:
        raise ValidationError(
            _("Service #%(id)d is “%(status)s”: “%(action)s” is not possible now.")
            % {"id": locked.pk, "status": ServiceStatus(locked.status).label, "action": PanelAction(action).label},
            code="not_now",
        )
    payload = {"suspend_reason": suspend_reason or SuspendReason.STAFF} if action == PanelAction.SUSPEND else {}
    panel_action_requested.send(sender=Service, service=locked, action=action, by=by, reason=reason, payload=payload)
    return locked


# Staff's suspensions: they outrank the client's and non-payment's, which the client or a payment may lift.
STAFF_REASONS = (SuspendReason.STAFF, SuspendReason.ABUSE)


def _staff_suspension_take_over(service: Service, suspend_reason: str, *, by, reason: StoredText | str) -> Service | None:
    """Staff suspend a service that is (or is being) suspended for another reason: their reason takes over.

    Suspended already: nothing changes in the panel, the reason becomes staff's. A suspension on its way
    (non-payment, the client's) lands with staff's reason. Either way no payment, client or daily run lifts it
    then. None when there is nothing to take over (an ordinary suspension request follows).
    """
    pending = service.operations.filter(status__in=PENDING_OPERATION_STATUSES).first()
    if pending and pending.action == PanelAction.RESUME and service.status == ServiceStatus.SUSPENDED:
        message = _("Service #%(id)d is being resumed right now: suspend it again once that is done.")
        raise ValidationError(message % {"id": service.pk}, code="busy")
    if service.status == ServiceStatus.SUSPENDED and service.suspend_reason not in STAFF_REASONS:
        old = service.suspend_reason
        service.suspend_reason = suspend_reason
        service.save(update_fields=["suspend_reason", "updated_at"])
    elif pending and pending.action == PanelAction.SUSPEND and pending.payload.get("suspend_reason") not in STAFF_REASONS:
        old = pending.payload.get("suspend_reason", "")
        # The worker reads the reason when the panel has suspended it, from the operation's locked row.
        service.operations.filter(pk=pending.pk).update(payload=pending.payload | {"suspend_reason": suspend_reason})
    else:
        return None
    return _suspend_reason_note(service, old, suspend_reason, by=by, reason=reason)


def _suspend_reason_note(service: Service, old: str, suspend_reason: str, *, by, reason: StoredText | str) -> Service:
    with translation.override(None):  # the labels' msgids, translated when the row is read
        old_label = StoredText(str(SuspendReason(old).label)) if old else "-"
        labels = {"old": old_label, "new": StoredText(str(SuspendReason(suspend_reason).label))}
    if reason:
        labels["reason"] = StoredText.of(reason)
        note = StoredText(gettext_noop("Suspend reason changed: %(old)s → %(new)s (%(reason)s)."), labels)
    else:
        note = StoredText(gettext_noop("Suspend reason changed: %(old)s → %(new)s."), labels)
    ServiceStatusChange.objects.create(service=service, from_status=service.status, to_status=service.status, reason=note, changed_by=by)
    return service


def _order_errors(*, client: Client, tariff: TariffPlan, period: int, domain: str, quantities: dict) -> dict:
    """What is wrong with an order, by form field; empty when it can be placed."""
    errors = {}
    if tariff.currency != client.currency:
        errors["tariff"] = _("This tariff is priced in %(tariff)s and your account in %(client)s.") % {
            "tariff": tariff.currency,
            "client": client.currency,
        }
    offered = {price.period: price for price in tariff.prices.all()}
    if period not in offered:
        errors["period"] = _("This tariff is not sold for that period.")
    if tariff.product_type == ProductType.VHOST and not domain:
        errors["domain"] = _("Enter the domain of the site, e.g. example.com.")
    elif domain:
        try:
            validate_domain(domain)
        except ValidationError as error:
            errors["domain"] = error.messages[0]
    resources = {resource.kind: resource for resource in tariff.resources.all()}
    for kind, quantity in quantities.items():
        resource = resources.get(kind)
        label = ResourceKind(kind).label if kind in ResourceKind.values else kind
        if kind == ResourceKind.DEDICATED_IPV4 and quantity:
            module = tariff.processing_module
            if not tariff.allow_dedicated_ip:
                errors[kind] = _("This tariff does not offer dedicated IP addresses.")
                continue
            if module.edition == "lite":
                errors[kind] = _("Dedicated IP addresses cannot be ordered here: ISPmanager Lite does not hand them out.")
                continue
        if resource is None:
            errors[kind] = _("%(resource)s cannot be ordered with this tariff.") % {"resource": label}
        elif not isinstance(quantity, int) or isinstance(quantity, bool):
            errors[kind] = _("%(resource)s: enter a whole number.") % {"resource": label}
        elif resource and quantity < resource.included:
            errors[kind] = _("%(resource)s: at least %(included)d (included in the price).") % {
                "resource": label,
                "included": resource.included,
            }
        elif kind in FLAG_RESOURCES and quantity > 1:
            errors[kind] = _("%(resource)s is on or off: enter 0 or 1.") % {"resource": label}
        elif quantity > (most := QUANTITY_MAX if resource.max_quantity is None else min(resource.max_quantity, QUANTITY_MAX)):
            errors[kind] = _("%(resource)s: at most %(max)d.") % {"resource": label, "max": most}
    return errors


def order_check(
    *,
    client: Client,
    tariff: TariffPlan,
    period: int,
    domain: str = "",
    resources: dict | None = None,
    dedicated_ips: int = 0,
    by_staff=False,
) -> tuple[str, dict]:
    """Validate an order; return its normalized domain and the quantity of every resource.

    `resources` maps resource kinds to the quantity wanted (included units counted); a kind left out
    gets the included amount. Staff may order tariffs hidden from the shop-window. Nobody may order
    a tariff whose processing module is disabled: its account could not be opened.
    """
    if not tariff.is_enabled or not (tariff.is_visible or by_staff):
        raise ValidationError(_("This tariff cannot be ordered."), code="tariff")
    if not (module := tariff.processing_module).is_enabled:
        message = _("This tariff cannot be ordered now: its processing module %(module)s is disabled.") % {"module": module}
        raise ValidationError(message if by_staff else _("This tariff cannot be ordered."), code="tariff")
    domain = (domain or "").strip().lower().rstrip(".")
    quantities = {resource.kind: resource.included for resource in tariff.resources.all()}
    quantities.update(resources or {})
    if dedicated_ips or ResourceKind.DEDICATED_IPV4 in quantities:
        quantities[ResourceKind.DEDICATED_IPV4] = dedicated_ips or quantities[ResourceKind.DEDICATED_IPV4]
    errors = _order_errors(client=client, tariff=tariff, period=period, domain=domain, quantities=quantities)
    if errors:
        raise ValidationError(errors)
    tariff_price = next(price.price for price in tariff.prices.all() if price.period == period)
    # The first payment is the largest sum an order stores or charges: it must fit the money columns.
    if tariff_quote(tariff=tariff, tariff_price=tariff_price, period=period, quantities=quantities).total > MONEY_MAX:
        raise ValidationError(
            _("This order costs more than can be billed at once: order fewer resources or a shorter period."), code="price_too_high"
        )
    return domain, quantities


@transaction.atomic
def order_place(
    *,
    client: Client,
    user,
    tariff: TariffPlan,
    period: int,
    domain: str = "",
    resources: dict | None = None,
    dedicated_ips: int = 0,
    by_staff: bool = False,
) -> Service:
    """Create an ordered service at a price computed here; nothing from the browser is trusted."""
    domain, quantities = order_check(
        client=client, tariff=tariff, period=period, domain=domain, resources=resources, dedicated_ips=dedicated_ips, by_staff=by_staff
    )
    tariff_price = tariff.prices.get(period=period).price
    quote = tariff_quote(tariff=tariff, tariff_price=tariff_price, period=period, quantities=quantities)
    service = Service.objects.create(
        client=client,
        tariff=tariff,
        ordered_by=user,
        period=period,
        domain=domain,
        price=quote.price,
        setup_fee=quote.setup_fee,
    )
    ServiceResource.objects.bulk_create(
        ServiceResource(service=service, kind=kind, quantity=quantity) for kind, quantity in quantities.items()
    )
    return service


def service_period_start(*, service: Service, at) -> Service:
    """The account exists: the first period starts now, and its day of the month anchors every later one.

    Only the first activation starts a period: a service resumed or re-opened keeps its anchor and expiry.
    The caller holds the service's row lock.
    """
    if service.period_anchor is None:
        service.period_anchor, service.expires_at = at, months_after(at, service.period)
        service.save(update_fields=["period_anchor", "expires_at", "updated_at"])
    return service


# How many periods a renewal may pay ahead at once.
MAX_RENEW_PERIODS = 12


def service_renew(*, service: Service, periods: int = 1, expected_expiry=None, by=None) -> Service:
    """Charge the balance for `periods` more periods and move the expiry on from where it was (not from today).

    A client who pays late gains no days and one who pays early loses none. The charge's key names the
    service and the new end of its paid time: the same renewal repeated charges once. `expected_expiry`,
    when given, is the expiry the caller saw: a renewal that already happened meanwhile (a double click,
    a second tab, a daily run) is then NothingToDo instead of a second renewal. A service whose deletion
    is on its way is not renewed: it would be charged and then deleted.
    """
    if isinstance(periods, bool) or not isinstance(periods, int) or not 1 <= periods <= MAX_RENEW_PERIODS:
        raise ValidationError({"periods": _("Renew for 1 to %(max)d periods.") % {"max": MAX_RENEW_PERIODS}})
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        if locked.expires_at is None or locked.period_anchor is None:
            message = _("Service #%(id)d has no paid period yet: pay for the order first.")
            raise ValidationError(message % {"id": locked.pk}, code="not_started")
        if locked.status not in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED):
            message = _("Service #%(id)d is “%(status)s”: it cannot be renewed.")
            raise ValidationError(message % {"id": locked.pk, "status": ServiceStatus(locked.status).label}, code="not_now")
        if expected_expiry is not None and locked.expires_at != expected_expiry:
            raise NothingToDo(_("Service #%(id)d has just been renewed: nothing was charged.") % {"id": locked.pk}, code="already_renewed")
        if service_pending_action(service=locked) == PanelAction.CLOSE:
            message = _("Service #%(id)d is being deleted: it cannot be renewed, nothing was charged.")
            raise ValidationError(message % {"id": locked.pk}, code="closing")
        quote = service_renewal_quote(service=locked, periods=periods)
        until, amount = quote.until, quote.amount
        # The period end names the renewal; staff may have moved the expiry back after one (refunding it): then it is a new one.
        key = f"service-{locked.pk}-renewal-until-{until.isoformat()}"
        if LedgerEntry.objects.filter(idempotency_key=key).exists():
            # key, key-2, key-3...: a range on the unique index ("-" sorts just before "."), which a LIKE would not use on SQLite.
            repeats = LedgerEntry.objects.filter(idempotency_key__gte=key, idempotency_key__lt=f"{key}.").count()
            key = f"{key}-{repeats + 1}"
        if amount > MONEY_MAX:
            raise ValidationError(_("This renewal costs more than can be billed at once: renew for fewer periods."), code="price_too_high")
        if amount:
            reference = StoredText(
                gettext_noop("Service #%(id)d, renewal until %(until)s"), {"id": locked.pk, "until": Day(local_date(until))}
            )
            start, end = local_date(locked.expires_at), local_date(until)
            period = Line(reference, quote.price, quantity=periods, period_start=start, period_end=end)
            ledger_entry_add(
                client=locked.client,
                kind=LedgerEntryKind.CHARGE,
                amount=amount,
                reference=reference,
                created_by=by,
                idempotency_key=key,
                lines=[period],
                service=locked,
            )
        locked.expires_at = until
        locked.save(update_fields=["expires_at", "updated_at"])
        renewed = StoredText(
            gettext_noop("Renewed until %(until)s: %(amount)s charged."),
            {"until": Day(until.astimezone(billing_zone()).date()), "amount": Money(amount, locked.client.currency)},
        )
        status = locked.status
        ServiceStatusChange.objects.create(service=locked, from_status=status, to_status=status, reason=renewed, changed_by=by)
        params = {"until": until.astimezone(billing_zone()).date().isoformat(), "amount": str(amount), "periods": periods}
        day = timezone.now().astimezone(billing_zone()).date()
        notify(service=locked, kind=NotificationKind.RENEWED, key=f"renewed:{key}", day=day, params=params)
        event_record(EventType.SERVICE_RENEWED, {**service_payload(locked), "renewal": {"periods": periods, "amount": str(amount)}})
        if locked.status == ServiceStatus.SUSPENDED and locked.suspend_reason == SuspendReason.NONPAYMENT:
            service_resume_if_paid(service_id=locked.pk, by=by)
    return locked


def service_resume_if_paid(*, service_id: int, by=None) -> None:
    """A service suspended for non-payment that is paid for now goes back online.

    Called after a renewal, and after a suspension for non-payment lands (it may have been queued before the
    payment came). A resume refused now (another operation on its way) is left to the daily run.
    """
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service_id)
        paid = service.expires_at is not None and service.expires_at > timezone.now()
        if paid and service.status == ServiceStatus.SUSPENDED and service.suspend_reason == SuspendReason.NONPAYMENT:
            with contextlib.suppress(ValidationError):
                service_action_request(service=service, action=PanelAction.RESUME, by=by, reason=StoredText(gettext_noop("paid")))


@transaction.atomic
def service_expiry_set(*, service: Service, expires_at, reason: str, by=None) -> Service:
    """Staff move a service's paid-until date, saying why; the change is written in its history.

    Later periods keep the anchor day when the new date is one of its period ends; otherwise the new
    date becomes the anchor (a date staff chose is where the following periods end).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the date changes: it is kept in the service's history.")})
    locked = Service.objects.select_for_update().get(pk=service.pk)
    if locked.status not in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED) or locked.period_anchor is None:
        message = _("Service #%(id)d has no running period: its expiry cannot be changed.")
        raise ValidationError(message % {"id": locked.pk}, code="not_now")
    if expires_at == locked.expires_at:
        raise NothingToDo(_("Service #%(id)d already expires then: nothing was changed.") % {"id": locked.pk}, code="unchanged")
    old = locked.expires_at
    if months_after(locked.period_anchor, months_between(locked.period_anchor, expires_at)) != expires_at:
        locked.period_anchor = expires_at
    locked.expires_at = expires_at
    locked.save(update_fields=["expires_at", "period_anchor", "updated_at"])
    zone = billing_zone()
    ServiceStatusChange.objects.create(
        service=locked,
        from_status=locked.status,
        to_status=locked.status,
        reason=StoredText(
            gettext_noop("Paid until changed by staff: %(old)s → %(new)s (%(reason)s)."),
            {"old": Day(old.astimezone(zone).date()), "new": Day(expires_at.astimezone(zone).date()), "reason": reason},
        ),
        changed_by=by,
    )
    return locked


@transaction.atomic
def service_auto_renew_set(*, service: Service, enabled: bool, by=None) -> Service:
    """Switch renewal from the balance on or off, and write it in the service's history."""
    locked = Service.objects.select_for_update().get(pk=service.pk)
    if locked.status == ServiceStatus.DELETED:
        raise ValidationError(_("Service #%(id)d is deleted: there is nothing to renew.") % {"id": locked.pk}, code="not_now")
    if locked.auto_renew == enabled:
        message = _("Auto-renew of service #%(id)d is already on.") if enabled else _("Auto-renew of service #%(id)d is already off.")
        raise NothingToDo(message % {"id": locked.pk}, code="unchanged")
    locked.auto_renew = enabled
    locked.save(update_fields=["auto_renew", "updated_at"])
    note = gettext_noop("Auto-renew turned on.") if enabled else gettext_noop("Auto-renew turned off.")
    ServiceStatusChange.objects.create(
        service=locked, from_status=locked.status, to_status=locked.status, reason=StoredText(note), changed_by=by
    )
    return locked


def service_pay(*, service: Service, by=None) -> Service:
    """Pay an ordered service from the balance and start creating its account.

    Paying again (a double click, a second tab, a retried request) charges nothing more: it raises
    NothingToDo, which says so.
    """
    with transaction.atomic():
        locked = Service.objects.select_for_update().get(pk=service.pk)
        if locked.paid_at:
            raise NothingToDo(_("Service #%(id)d is already paid for: nothing was charged.") % {"id": locked.pk}, code="already_paid")
        if locked.first_payment:
            reference = StoredText(gettext_noop("Service #%(id)d, first payment"), {"id": locked.pk})
            # The first period's dates are known once the account exists (its anchor): the line says which service.
            lines = [Line(StoredText(gettext_noop("Service #%(id)d, first period"), {"id": locked.pk}), locked.price)]
            if locked.setup_fee:
                lines.append(Line(StoredText(gettext_noop("Service #%(id)d, setup fee"), {"id": locked.pk}), locked.setup_fee))
            ledger_entry_add(
                client=locked.client,
                kind=LedgerEntryKind.CHARGE,
                amount=locked.first_payment,
                reference=reference,
                created_by=by,
                idempotency_key=f"service-{locked.pk}-first-payment",
                lines=[line for line in lines if line.amount],
                service=locked,
            )
        return service_mark_paid(service=locked, by=by)


def email_login(email: str) -> str:
    """The login of a client who signs in with `email`: its address, lower-cased, as client_register stores it."""
    return get_user_model().objects.normalize_email(email).lower()


@transaction.atomic
def client_register(*, email: str, name: str, password: str, language: str) -> Client:
    """A new client account and its user, who logs in with the email."""
    email = email_login(email)
    if len(email) > (longest := get_user_model()._meta.get_field("username").max_length):
        # The email becomes the login, and the login column is shorter than an email may be.
        raise ValidationError({"email": _("Use an email of at most %(max)d characters: it becomes your login.") % {"max": longest}})
    taken = ValidationError({"email": _("An account with this email already exists: log in, or reset the password.")})
    if get_user_model().objects.filter(username__iexact=email).exists():
        raise taken
    try:
        with transaction.atomic():
            user = get_user_model().objects.create_user(username=email, email=email, password=password)
    except IntegrityError:
        raise taken from None  # registered at the same moment by another request
    client = Client.objects.create(name=name, email=email, language=language)
    client.users.add(user)
    return client


REQUESTABLE_BY_CLIENT = (PanelAction.SUSPEND, PanelAction.RESUME, PanelAction.CLOSE)
# They stop or destroy what the client pays for: the client confirms them after reading what happens.
CONFIRMED_BY_CLIENT = (PanelAction.SUSPEND, PanelAction.CLOSE)


# A client renews a service that runs, or that paying brings back: never one that staff suspended (abuse included).
CLIENT_RENEWABLE_SUSPENSIONS = (SuspendReason.NONPAYMENT, SuspendReason.CLIENT)


def service_client_renewable(service: Service) -> bool:
    """Whether the client may renew the service now: its first period has started and nobody but the client stopped it."""
    if service.expires_at is None or service.period_anchor is None:
        return False
    return service.status == ServiceStatus.ACTIVE or (
        service.status == ServiceStatus.SUSPENDED and service.suspend_reason in CLIENT_RENEWABLE_SUSPENSIONS
    )


@transaction.atomic
def service_client_renew(*, service: Service, periods: int, expected_expiry, user) -> Service:
    """Renew Now in the client area: service_renew, for a service the client may renew (checked under the row lock)."""
    locked = Service.objects.select_for_update().get(pk=service.pk)
    if not service_client_renewable(locked):
        message = _("Service #%(id)d cannot be renewed here: please contact support.")
        raise ValidationError(message % {"id": locked.pk}, code="not_renewable")
    return service_renew(service=locked, periods=periods, expected_expiry=expected_expiry, by=user)


def service_client_actions(service: Service) -> dict:
    """What the client area offers for a service: pay, renew, suspend, resume, close (booleans).

    `pending` is the panel action already on its way, if any: until the panel has done it, nothing
    else is offered.
    """
    pending = service_pending_action(service=service) if service.status != ServiceStatus.ORDERED else None
    idle = pending is None
    return {
        "pending": pending,
        "pay": service.status == ServiceStatus.ORDERED,
        "renew": pending != PanelAction.CLOSE and service_client_renewable(service),
        "suspend": idle and service.status in REQUESTABLE_IN[PanelAction.SUSPEND],
        "resume": idle and service.status in REQUESTABLE_IN[PanelAction.RESUME] and service.suspend_reason == SuspendReason.CLIENT,
        "close": idle and (service.status == ServiceStatus.ORDERED or service.status in REQUESTABLE_IN[PanelAction.CLOSE]),
    }


@transaction.atomic
def service_client_request(*, service: Service, action: str, user, confirmed: bool = False) -> Service:
    """What a client may do to its own service: suspend it, resume what it suspended, delete it.

    Suspending and deleting need `confirmed`: the client saw what they do and said yes.
    """
    if action not in REQUESTABLE_BY_CLIENT:
        raise ValidationError(_("This action is not available."), code="action")
    if action in CONFIRMED_BY_CLIENT and not confirmed:
        raise ValidationError(_("Please confirm first: nothing was changed."), code="not_confirmed")
    service = Service.objects.select_for_update().get(pk=service.pk)
    if action == PanelAction.RESUME and service.suspend_reason != SuspendReason.CLIENT:
        raise ValidationError(_("Only a service you suspended yourself can be resumed here: please contact support."), code="not_yours")
    return service_action_request(
        service=service, action=action, by=user, reason=StoredText(gettext_noop("asked by the client")), suspend_reason=SuspendReason.CLIENT
    )


# Staff may change the resources of an unpaid order (repriced before it is paid) and of an account in
# the panel (new limits sent with SET_LIMITS). Charging or refunding the difference for the period
# already paid comes with the billing cycle; until then the new price applies from the next period.
RESOURCES_CHANGEABLE_IN = {_S.ORDERED, _S.ACTIVE, _S.SUSPENDED}


def service_resources_check(*, service: Service, quantities: dict) -> tuple[dict, Decimal]:
    """Validate new resource quantities for a service like an order; return what changes and the new price per period.

    `quantities` maps resource kinds to the new total (included units counted); kinds left out keep theirs.
    Only the resources change the price: the tariff's price for the period stays what the order was sold at.
    """
    if service.status not in RESOURCES_CHANGEABLE_IN:
        message = _("Service #%(id)d is “%(status)s”: its resources cannot be changed now.")
        raise ValidationError(message % {"id": service.pk, "status": service.get_status_display()}, code="not_now")
    if service.status != ServiceStatus.ORDERED and (pending := service_pending_action(service=service)):
        message = _("Service #%(id)d is waiting for “%(action)s” in the panel: change its resources when that is done.")
        raise ValidationError(message % {"id": service.pk, "action": PanelAction(pending).label}, code="busy")
    current = dict(service.resources.values_list("kind", "quantity"))
    changed = {kind: quantity for kind, quantity in quantities.items() if current.get(kind) != quantity}
    if not changed:
        raise NothingToDo(_("The service already has these resources: nothing was changed."), code="unchanged")
    if ResourceKind.DEDICATED_IPV4 in changed and service.status != ServiceStatus.ORDERED:
        message = _("Dedicated IP addresses are assigned when the account is created: they cannot be changed here.")
        raise ValidationError({ResourceKind.DEDICATED_IPV4: message})
    tariff, new = service.tariff, current | changed
    errors = _order_errors(client=service.client, tariff=tariff, period=service.period, domain=service.domain, quantities=new)
    errors = {kind: message for kind, message in errors.items() if kind in changed}
    if errors:
        raise ValidationError(errors)
    extras = lambda quantities: tariff_quote(tariff=tariff, tariff_price=Decimal(0), period=service.period, quantities=quantities).price  # noqa: E731
    price = max(Decimal(0), service.price + extras(new) - extras(current))
    if price + service.setup_fee > MONEY_MAX:
        raise ValidationError(_("The service would cost more than can be billed at once: choose fewer resources."), code="price_too_high")
    return changed, price


@transaction.atomic
def service_resources_change(*, service: Service, quantities: dict, by=None) -> Service:
    """Change a service's resources (validated like an order), reprice it, write the audit rows, queue the panel's new limits."""
    locked = Service.objects.select_for_update().get(pk=service.pk)
    old = dict(locked.resources.values_list("kind", "quantity"))
    changed, price = service_resources_check(service=locked, quantities=quantities)
    for kind, quantity in changed.items():
        ServiceResource.objects.update_or_create(service=locked, kind=kind, defaults={"quantity": quantity})
    old_price, locked.price = locked.price, price
    locked.save(update_fields=["price", "updated_at"])
    with translation.override(None):  # the label's msgid, translated when the row is read
        labels = {kind: str(ResourceKind(kind).label) for kind in changed}
    notes = [
        StoredText(
            gettext_noop("%(resource)s changed by staff: %(old)s → %(new)s."),
            {"resource": StoredText(labels[kind]), "old": Quantity(old.get(kind, 0)), "new": Quantity(quantity)},
        )
        for kind, quantity in changed.items()
    ]
    if price != old_price:
        notes.append(
            StoredText(
                gettext_noop("Price per period: %(old)s → %(new)s."),
                {"old": Money(old_price, locked.client.currency), "new": Money(price, locked.client.currency)},
            )
        )
    # The service's history: a row that keeps the status and says what changed, who and when.
    status = locked.status
    ServiceStatusChange.objects.bulk_create(
        ServiceStatusChange(service=locked, from_status=status, to_status=status, reason=note, changed_by=by) for note in notes
    )
    if status in REQUESTABLE_IN[PanelAction.SET_LIMITS]:
        reason = StoredText(gettext_noop("resources changed by staff"))
        service_action_request(service=locked, action=PanelAction.SET_LIMITS, by=by, reason=reason)
    return locked
