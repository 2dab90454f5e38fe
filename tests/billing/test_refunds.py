"""Staff refunding part of an invoice: a credit note naming it, a ledger refund, once per request, never more than is left."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from billing.choices import DocumentKind, LedgerEntryKind, ServiceStatus
from billing.models import Document, DocumentLine, LedgerEntry
from billing.refunds import invoice_refund, invoice_refunded
from billing.selectors import client_balance
from billing.services import ledger_entry_add, service_renew
from tests.conftest import postgres_only, run_at_once
from tests.factories import ServiceFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"
    settings.BILLING_TAX_RATE = "0"


@pytest.fixture
def staff(db):
    return StaffUserFactory(username="refunds@example.com")


def renewed(times: int, balance="100.00"):
    """A service of 10.00 a month renewed `times` times in March 2026: its invoices INV-2026-00001 onwards."""
    with time_machine.travel(utc(2026, 3, 2, 9), tick=False):
        service = ServiceFactory(
            price=Decimal("10.00"), status=ServiceStatus.ACTIVE, period_anchor=utc(2026, 1, 31, 10), expires_at=utc(2026, 2, 28, 10)
        )
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
        for _ in range(times):
            service_renew(service=service)
    return service


def invoice(number):
    return Document.objects.get(number=number)


def snapshot(document):
    """Everything an issued document says, lines included."""
    fields = {field.attname: getattr(document, field.attname) for field in Document._meta.concrete_fields}
    return fields, list(DocumentLine.objects.filter(document=document).values())


def test_example_7_staff_refund_10_of_the_seventh_invoice(staff):
    service = renewed(7)
    inv7 = invoice("INV-2026-00007")
    before = snapshot(inv7)
    balance = client_balance(client=service.client)

    with time_machine.travel(utc(2026, 3, 5, 12), tick=False):
        note = invoice_refund(invoice=inv7, amount=Decimal("10.00"), by=staff, idempotency_key="k-1", reason="Outage")

    assert (note.kind, note.number, note.corrects_id, note.gross) == (DocumentKind.CREDIT_NOTE, "CN-2026-00001", inv7.pk, Decimal("-10.00"))
    (line,) = note.lines.all()
    assert (str(line.description), line.gross) == ("Refund of INV-2026-00007", Decimal("-10.00"))
    (refund,) = LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND)
    assert (refund.amount, refund.document_id, refund.created_by_id) == (Decimal("10.00"), note.pk, staff.pk)
    assert str(refund.reference) == "Refund of INV-2026-00007: Outage"
    assert client_balance(client=service.client) == balance + Decimal("10.00")
    inv7.refresh_from_db()
    assert snapshot(inv7) == before
    assert invoice_refunded(inv7) == Decimal("10.00")

    again = invoice_refund(invoice=inv7, amount=Decimal("10.00"), by=staff, idempotency_key="k-1", reason="Outage")

    assert again.pk == note.pk
    assert Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).count() == 1
    assert client_balance(client=service.client) == balance + Decimal("10.00")


def test_never_more_than_is_left_unrefunded_and_the_message_says_how_much_is_left(staff):
    renewed(1)
    inv = invoice("INV-2026-00001")
    invoice_refund(invoice=inv, amount=Decimal("6.50"), by=staff, idempotency_key="a")

    with pytest.raises(ValidationError) as refused:
        invoice_refund(invoice=inv, amount=Decimal("3.51"), by=staff, idempotency_key="b")

    assert refused.value.messages == [f"At most 3.50\xa0{inv.currency} of INV-2026-00001 is left to refund."]
    assert refused.value.code == "too_much"
    invoice_refund(invoice=inv, amount=Decimal("3.50"), by=staff, idempotency_key="c")
    assert invoice_refunded(inv) == Decimal("10.00")
    with pytest.raises(ValidationError, match=r"At most 0\.00"):
        invoice_refund(invoice=inv, amount=Decimal("0.01"), by=staff, idempotency_key="d")
    assert list(Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).values_list("number", "gross")) == [
        ("CN-2026-00002", Decimal("-3.50")),
        ("CN-2026-00001", Decimal("-6.50")),
    ]


@pytest.mark.parametrize("amount", ["0", "-1.00", "0.001", "NaN", "Infinity", "1e30"])
def test_a_nonpositive_fractional_or_absurd_amount_is_refused_and_nothing_is_written(staff, amount):
    renewed(1)

    with pytest.raises(ValidationError):
        invoice_refund(invoice=invoice("INV-2026-00001"), amount=Decimal(amount), by=staff, idempotency_key="x")

    assert not Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).exists()
    assert not LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).exists()


def test_a_credit_note_or_a_receipt_cannot_be_refunded(staff):
    renewed(1)
    note = invoice_refund(invoice=invoice("INV-2026-00001"), amount=Decimal("1.00"), by=staff, idempotency_key="x")
    receipt = Document.objects.get(kind=DocumentKind.RECEIPT)

    for document in (note, receipt):
        with pytest.raises(ValidationError, match="Only an invoice can be refunded"):
            invoice_refund(invoice=document, amount=Decimal("1.00"), by=staff, idempotency_key="y")

    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).count() == 1


def test_a_key_of_another_invoices_refund_does_not_answer_this_one(staff):
    renewed(2)
    first, second = invoice("INV-2026-00001"), invoice("INV-2026-00002")

    one = invoice_refund(invoice=first, amount=Decimal("1.00"), by=staff, idempotency_key="same")
    two = invoice_refund(invoice=second, amount=Decimal("2.00"), by=staff, idempotency_key="same")

    assert (one.corrects_id, one.gross, two.corrects_id, two.gross) == (first.pk, Decimal("-1.00"), second.pk, Decimal("-2.00"))


def test_with_tax_added_on_top_the_credit_note_totals_the_amount_refunded(settings, staff):
    settings.BILLING_TAX_RATE = "20"
    settings.BILLING_PRICES_INCLUDE_TAX = False
    renewed(1)
    inv = invoice("INV-2026-00001")
    assert inv.gross == Decimal("12.00")

    note = invoice_refund(invoice=inv, amount=Decimal("6.00"), by=staff, idempotency_key="t")

    assert (note.net, note.tax, note.gross, note.tax_rate) == (Decimal("-5.00"), Decimal("-1.00"), Decimal("-6.00"), Decimal("20"))
    assert LedgerEntry.objects.get(kind=LedgerEntryKind.REFUND).amount == Decimal("6.00")
    assert invoice_refunded(inv) == Decimal("6.00")


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_refunds_at_once_never_give_back_more_than_the_invoice(staff):
    renewed(1)
    inv = invoice("INV-2026-00001")

    outcomes = run_at_once(8, lambda i: invoice_refund(invoice=inv, amount=Decimal("3.00"), by=staff, idempotency_key=f"r{i}"))

    assert sum(outcome is None for outcome in outcomes) == 3
    assert all(isinstance(outcome, ValidationError) for outcome in outcomes if outcome is not None)
    assert invoice_refunded(inv) == Decimal("9.00")
    assert sorted(Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).values_list("sequence_number", flat=True)) == [1, 2, 3]


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_the_same_request_twice_at_once_refunds_once(staff):
    renewed(1)
    inv = invoice("INV-2026-00001")

    outcomes = run_at_once(4, lambda i: invoice_refund(invoice=inv, amount=Decimal("3.00"), by=staff, idempotency_key="double"))

    assert outcomes == [None] * 4
    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).count() == 1
    assert invoice_refunded(inv) == Decimal("3.00")
