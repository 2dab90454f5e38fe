"""Writes of the billing core. Every function here is the one place its rule lives."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from billing.choices import SERVICE_TRANSITIONS, LedgerEntryKind, ServiceStatus
from billing.models import Client, LedgerEntry, Service, ServiceStatusChange
from billing.selectors import client_balance


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
