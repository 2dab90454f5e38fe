"""Top-ups through payment gateways.

A gateway starts a payment (instructions to show, or an address to send the client to) and, for
gateways that call back, turns a signed callback into "this reference is paid". Confirming a
payment credits the ledger exactly once, however many times it is confirmed.
"""

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from billing.choices import LedgerEntryKind, PaymentStatus
from billing.models import Client, Payment
from billing.money import money_format
from billing.services import NothingToDo, ledger_entry_add
from billing.stored_text import StoredText
from billing.webhooks.events import event_record
from billing.webhooks.models import EventType
from billing.webhooks.payloads import payment_payload

MIN_TOPUP, MAX_TOPUP = Decimal("1.00"), Decimal("1000000.00")


@dataclass(frozen=True)
class PaymentStart:
    """What the client sees after choosing a gateway: instructions, or a page to go to."""

    instructions: str = ""
    redirect_url: str = ""


# What a callback may name: printable ASCII that fits Payment.reference (40) and Payment.external_id (100).
_CALLBACK_REFERENCE, _CALLBACK_ID = re.compile(r"[!-~]{1,40}"), re.compile(r"[!-~]{0,100}")


@dataclass(frozen=True)
class CallbackResult:
    reference: str
    paid: bool
    external_id: str = ""

    def __post_init__(self):
        # Signed or not, it comes from outside: it must fit the columns before it is looked up or stored.
        if not (_CALLBACK_REFERENCE.fullmatch(self.reference) and _CALLBACK_ID.fullmatch(self.external_id)):
            raise ValidationError(_("The callback could not be read."), code="payload")


class Gateway:
    code = ""
    name = ""

    def start(self, payment: Payment) -> PaymentStart:
        raise NotImplementedError

    def instructions(self, payment: Payment) -> str:
        """What to show with a payment that awaits payment; no side effects."""
        return ""

    def parse_callback(self, body: bytes, headers: dict) -> CallbackResult:
        """Check the callback's signature and read it; raise ValidationError when it is not genuine."""
        raise ValidationError(_("This payment method does not call back."), code="no_callback")


class ManualGateway(Gateway):
    """A bank transfer: the client pays with the reference, staff confirm in the admin."""

    code = "manual"
    name = gettext_lazy("Bank transfer")

    def start(self, payment):
        return PaymentStart(instructions=self.instructions(payment))

    def instructions(self, payment):
        return _(
            "Transfer %(amount)s to:\n%(details)s\nPayment reference: %(reference)s\n"
            "Your balance is credited when the transfer arrives."
        ) % {
            "amount": money_format(payment.amount, payment.currency),
            "details": settings.BANK_TRANSFER_DETAILS,
            "reference": payment.reference,
        }


class DemoGateway(Gateway):
    """For demos: pays at once. Its callback is signed like a card gateway's would be."""

    code = "test"
    name = gettext_lazy("Test payment (demo)")

    def start(self, payment):
        payment_confirm(payment=payment, external_id=f"test-{payment.reference}")
        return PaymentStart(instructions=_("Test payment received."))

    def parse_callback(self, body, headers):
        expected = callback_signature(body).encode()
        # As bytes: compare_digest refuses a str with non-ASCII characters, and a header may hold any.
        if not hmac.compare_digest(headers.get("X-Signature", "").encode(errors="replace"), expected):
            raise ValidationError(_("The callback's signature does not match."), code="signature")
        try:
            data = json.loads(body)
            return CallbackResult(reference=str(data["reference"]), paid=data["status"] == "paid", external_id=str(data.get("id", "")))
        except (ValueError, KeyError, TypeError, RecursionError):
            raise ValidationError(_("The callback could not be read."), code="payload") from None


def callback_signature(body: bytes) -> str:
    if not settings.PAYMENT_CALLBACK_SECRET:
        raise ValidationError(_("Payment callbacks are not configured (PAYMENT_CALLBACK_SECRET)."), code="not_configured")
    return hmac.new(settings.PAYMENT_CALLBACK_SECRET.encode(), body, hashlib.sha256).hexdigest()


GATEWAYS = {gateway.code: gateway for gateway in (ManualGateway(), DemoGateway())}


def enabled_gateways() -> list[Gateway]:
    return [GATEWAYS[code] for code in settings.PAYMENT_GATEWAYS]


def gateway_name(code: str) -> str:
    """A payment method's name in the reader's language; a code this site no longer knows is shown as it is."""
    gateway = GATEWAYS.get(code)
    return str(gateway.name) if gateway else code


def payment_start(*, client: Client, gateway_code: str, amount, by=None) -> tuple[Payment, PaymentStart]:
    """Begin a top-up of `amount` in the client's currency through one of the enabled gateways."""
    if gateway_code not in settings.PAYMENT_GATEWAYS:
        raise ValidationError({"gateway": _("Choose one of the payment methods offered.")})
    try:
        amount = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite():
        raise ValidationError({"amount": _("Enter an amount such as 500.00.")})
    if not MIN_TOPUP <= amount <= MAX_TOPUP:
        raise ValidationError(
            {"amount": _("Enter an amount from %(min)s to %(max)s.") % {"min": MIN_TOPUP, "max": MAX_TOPUP}},
        )
    payment = Payment.objects.create(
        client=client,
        gateway=gateway_code,
        amount=amount,
        currency=client.currency,
        reference=f"P{secrets.token_hex(5).upper()}",
        created_by=by,
    )
    return payment, GATEWAYS[gateway_code].start(payment)


@transaction.atomic
def payment_confirm(*, payment: Payment, by=None, external_id: str = "") -> Payment:
    """Mark a payment paid and credit the ledger; confirming it again credits nothing and raises NothingToDo."""
    locked = Payment.objects.select_for_update().get(pk=payment.pk)
    if locked.status == PaymentStatus.PAID:
        raise NothingToDo(
            _("Payment %(reference)s is already confirmed: nothing was credited again.") % {"reference": locked.reference},
            code="already_paid",
        )
    if locked.status != PaymentStatus.PENDING:
        raise ValidationError(_("Payment %(reference)s was cancelled.") % {"reference": locked.reference}, code="cancelled")
    locked.status, locked.paid_at, locked.confirmed_by = PaymentStatus.PAID, timezone.now(), by
    locked.external_id = external_id or locked.external_id
    locked.save(update_fields=["status", "paid_at", "confirmed_by", "external_id"])
    ledger_entry_add(
        client=locked.client,
        kind=LedgerEntryKind.TOPUP,
        amount=locked.amount,
        reference=StoredText(gettext_noop("Payment %(reference)s"), {"reference": locked.reference}),
        created_by=by,
        idempotency_key=f"payment-{locked.pk}",
    )
    event_record(EventType.PAYMENT_CONFIRMED, payment_payload(locked))
    return locked


@transaction.atomic
def payment_cancel(*, payment: Payment) -> Payment:
    locked = Payment.objects.select_for_update().get(pk=payment.pk)
    if locked.status != PaymentStatus.PENDING:
        raise ValidationError(_("Only a payment awaiting payment can be cancelled."), code="not_pending")
    locked.status = PaymentStatus.CANCELLED
    locked.save(update_fields=["status"])
    return locked


def payment_callback(*, gateway_code: str, body: bytes, headers: dict) -> Payment:
    """A gateway's notification: genuine and about a known payment, or refused."""
    gateway = GATEWAYS.get(gateway_code)
    if gateway is None or gateway_code not in settings.PAYMENT_GATEWAYS:
        raise ValidationError(_("Unknown payment method."), code="gateway")
    result = gateway.parse_callback(body, headers)
    payment = Payment.objects.filter(reference=result.reference, gateway=gateway_code).first()
    if payment is None:
        raise ValidationError(_("Unknown payment reference."), code="reference")
    if not result.paid:
        return payment
    try:
        return payment_confirm(payment=payment, external_id=result.external_id)
    except NothingToDo:
        return payment  # gateways repeat their notifications until they get an answer
