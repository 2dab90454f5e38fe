"""Writes of the billing core. Every function here is the one place its rule lives."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.choices import SERVICE_TRANSITIONS, LedgerEntryKind, PanelAction, ServiceStatus, SuspendReason
from billing.models import Client, LedgerEntry, Service, ServiceResource, ServiceStatusChange
from billing.selectors import client_balance
from billing.signals import panel_action_requested

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


class InsufficientFunds(ValidationError):
    def __init__(self, missing: Decimal, currency: str):
        self.missing = missing
        super().__init__(
            _("Not enough money on the balance: %(missing)s %(currency)s more is needed.") % {"missing": missing, "currency": currency},
            code="insufficient_funds",
        )


class TransitionNotAllowed(ValidationError):
    pass


def ledger_amount_validate(*, kind: str, amount: Decimal) -> None:
    """Top-ups, refunds and charges are positive amounts; an adjustment is signed and not zero."""
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
    reference: str = "",
    created_by=None,
    idempotency_key: str | None = None,
) -> LedgerEntry:
    """Add a movement of money. A charge never takes the balance below zero.

    With an `idempotency_key`, repeating a call returns the first entry instead of adding a second.
    """
    amount = Decimal(amount)
    ledger_amount_validate(kind=kind, amount=amount)
    signed = -amount if kind == LedgerEntryKind.CHARGE else amount
    try:
        with transaction.atomic():
            # Entries of one client are written one at a time: a charge sees every earlier
            # top-up and no two charges spend the same money.
            Client.objects.select_for_update().filter(pk=client.pk).first()
            if idempotency_key and (existing := LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()):
                return existing
            if kind == LedgerEntryKind.CHARGE:
                balance = client_balance(client=client)
                if balance < amount:
                    raise InsufficientFunds(missing=amount - balance, currency=client.currency)
            return LedgerEntry.objects.create(
                client=client,
                kind=kind,
                amount=signed,
                reference=reference,
                created_by=created_by,
                idempotency_key=idempotency_key,
            )
    except IntegrityError:
        # Another request with the same key won the race; its entry is the answer.
        if idempotency_key:
            return LedgerEntry.objects.get(idempotency_key=idempotency_key)
        raise


@transaction.atomic
def service_status_change(*, service: Service, to: str, by=None, reason: str = "", suspend_reason: str = "") -> Service:
    """Move a service to another status if the transition table allows it, and write the audit row."""
    locked = Service.objects.select_for_update().get(pk=service.pk)
    current = ServiceStatus(locked.status)
    if to not in SERVICE_TRANSITIONS[current]:
        raise TransitionNotAllowed(
            _("A service cannot go from %(from)s to %(to)s.") % {"from": current.label, "to": ServiceStatus(to).label},
            code="transition",
        )
    locked.status = to
    locked.suspend_reason = suspend_reason if to == ServiceStatus.SUSPENDED else ""
    locked.save(update_fields=["status", "suspend_reason", "updated_at"])
    ServiceStatusChange.objects.create(service=locked, from_status=current, to_status=to, reason=reason, changed_by=by)
    service.status, service.suspend_reason = locked.status, locked.suspend_reason
    return locked


def service_resources_fill(*, service: Service) -> None:
    """Give the service every resource of its tariff it does not have yet, at the included amount."""
    have = set(service.resources.values_list("kind", flat=True))
    ServiceResource.objects.bulk_create(
        ServiceResource(service=service, kind=resource.kind, quantity=resource.included)
        for resource in service.tariff.resources.all()
        if resource.kind not in have
    )


@transaction.atomic
def service_mark_paid(*, service: Service, by=None, reason: str = "") -> Service:
    """Record that an ordered service is paid for, and ask for its account to be created."""
    locked = Service.objects.select_for_update().get(pk=service.pk)
    if locked.paid_at:
        raise ValidationError(_("Service #%(id)d is already paid for.") % {"id": locked.pk}, code="already_paid")
    if locked.status != ServiceStatus.ORDERED:
        raise ValidationError(
            _("Service #%(id)d is “%(status)s”: only an ordered service can be paid for.")
            % {"id": locked.pk, "status": ServiceStatus(locked.status).label},
            code="not_ordered",
        )
    locked.paid_at = timezone.now()
    locked.save(update_fields=["paid_at", "updated_at"])
    service_resources_fill(service=locked)
    service_status_change(service=locked, to=ServiceStatus.PROCESSING, by=by, reason=reason or _("paid"))
    panel_action_requested.send(sender=Service, service=locked, action=PanelAction.OPEN, by=by, reason=reason, payload={})
    return locked


@transaction.atomic
def service_action_request(*, service: Service, action: str, by=None, reason: str = "", suspend_reason: str = "") -> Service:
    """Ask for a panel action on a service; its status changes only when the panel has done it.

    An unpaid service has nothing in a panel: deleting it is immediate.
    """
    locked = Service.objects.select_for_update().get(pk=service.pk)
    if action == PanelAction.CLOSE and locked.status == ServiceStatus.ORDERED:
        return service_status_change(service=locked, to=ServiceStatus.DELETED, by=by, reason=reason or _("cancelled before payment"))
    if locked.status not in REQUESTABLE_IN[action]:
        raise ValidationError(
            _("Service #%(id)d is “%(status)s”: “%(action)s” is not possible now.")
            % {"id": locked.pk, "status": ServiceStatus(locked.status).label, "action": PanelAction(action).label},
            code="not_now",
        )
    payload = {"suspend_reason": suspend_reason or SuspendReason.STAFF} if action == PanelAction.SUSPEND else {}
    panel_action_requested.send(sender=Service, service=locked, action=action, by=by, reason=reason, payload=payload)
    return locked
