"""Staff refunding part of an invoice: a credit note that names the invoice and a ledger refund, once per request.

The invoice itself never changes; what is left to refund is its total less the credit notes that correct it,
read under the client's ledger lock, so two refunds at once never give back more than the invoice was.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.choices import DocumentKind, LedgerEntryKind
from billing.documents import Line, cents
from billing.models import Client, Document, LedgerEntry
from billing.money import money_format
from billing.services import ledger_amount_validate, ledger_entry_add
from billing.stored_text import StoredText

REASON_MAX = 100
KEY_MAX = 64


def invoice_refunded(invoice: Document) -> Decimal:
    """What the credit notes correcting the invoice gave back (a positive amount)."""
    total = invoice.corrections.filter(kind=DocumentKind.CREDIT_NOTE).aggregate(total=Sum("gross"))["total"]
    return -(total or Decimal("0.00"))


def invoice_refundable(invoice: Document) -> Decimal:
    """What is left to refund of the invoice."""
    return invoice.gross - invoice_refunded(invoice)


def invoice_refund(*, invoice: Document, amount: Decimal, by, idempotency_key: str, reason: str = "") -> Document:
    """Refund `amount` of the invoice to the client's balance: a credit note with one line, and a ledger refund.

    The same `idempotency_key` again (a double submit) returns the first credit note and changes nothing.
    """
    if invoice.kind != DocumentKind.INVOICE:
        raise ValidationError(_("Only an invoice can be refunded."), code="not_an_invoice")
    if not idempotency_key or len(idempotency_key) > KEY_MAX:
        raise ValidationError(_("The refund request is not valid: reload the page and try again."), code="key")
    if len(reason) > REASON_MAX:
        raise ValidationError(_("Ensure the reason has at most %(max)d characters.") % {"max": REASON_MAX}, code="reason")
    amount = Decimal(amount)
    ledger_amount_validate(kind=LedgerEntryKind.REFUND, amount=amount)
    if amount != cents(amount):
        raise ValidationError(_("Enter the amount in whole cents."), code="amount")
    # The ledger's keys are global: this one names the invoice, so a key of another request can never answer it.
    key = f"invoice-{invoice.pk}-refund-{idempotency_key}"
    with transaction.atomic():
        # The ledger's own lock, taken before reading what is left: refunds of the client's invoices go one at a time.
        Client.objects.select_for_update().filter(pk=invoice.client_id).first()
        if existing := LedgerEntry.objects.filter(idempotency_key=key).select_related("document").first():
            return existing.document
        left = invoice_refundable(invoice)
        if amount > left:
            raise ValidationError(
                _("At most %(left)s of %(number)s is left to refund.")
                % {"left": money_format(left, invoice.currency), "number": invoice.number},
                code="too_much",
            )
        description = StoredText(gettext_noop("Refund of %(number)s"), {"number": invoice.number})
        reference = description
        if reason:
            reference = StoredText(gettext_noop("Refund of %(number)s: %(reason)s"), {"number": invoice.number, "reason": reason})
        entry = ledger_entry_add(
            client=invoice.client,
            kind=LedgerEntryKind.REFUND,
            amount=amount,
            reference=reference,
            created_by=by,
            idempotency_key=key,
            lines=[Line(description=description, amount=-amount, money=True)],  # that much money back, its tax taken out of it
            service=invoice.service,
            corrects=invoice,
        )
        return entry.document

