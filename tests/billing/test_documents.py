"""Every movement of money has its document, issued in the same transaction, numbered without gaps, never changed."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import translation

from billing.choices import DocumentKind, LedgerEntryKind
from billing.documents import tax_split
from billing.models import Document, DocumentImmutable, DocumentSequence, LedgerEntry
from billing.services import InsufficientFunds, ledger_entry_add
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db


def add(client, kind, amount, **extra):
    return ledger_entry_add(client=client, kind=kind, amount=Decimal(amount), **extra)


def test_a_charge_a_refund_and_a_top_up_each_get_their_document_and_an_adjustment_none():
    client = ClientFactory(name="Ann")
    topup = add(client, LedgerEntryKind.TOPUP, "100.00", reference="Bank transfer 17")
    charge = add(client, LedgerEntryKind.CHARGE, "30.05", reference="Extra disk")
    refund = add(client, LedgerEntryKind.REFUND, "10.00", corrects=charge.document)
    adjustment = add(client, LedgerEntryKind.ADJUSTMENT, "-5.02")

    assert (topup.document.kind, topup.document.gross) == (DocumentKind.RECEIPT, Decimal("100.00"))
    assert topup.document.number.startswith("RCP-") and topup.document.number.endswith("-00001")
    assert (charge.document.kind, charge.document.gross) == (DocumentKind.INVOICE, Decimal("30.05"))
    assert charge.document.number.startswith("INV-") and charge.document.number.endswith("-00001")
    assert (refund.document.kind, refund.document.gross, refund.document.corrects) == (
        DocumentKind.CREDIT_NOTE,
        Decimal("-10.00"),
        charge.document,
    )
    assert refund.document.number.startswith("CN-") and refund.document.number.endswith("-00001")
    assert adjustment.document is None
    line = charge.document.lines.get()
    with translation.override("en"):
        assert (str(line.description), line.quantity, line.unit_price, line.gross) == ("Extra disk", 1, Decimal("30.05"), Decimal("30.05"))
    assert charge.document.buyer["name"] == "Ann"


def test_numbers_follow_each_other_per_series_without_gaps():
    client = ClientFactory()
    add(client, LedgerEntryKind.TOPUP, "100.00")
    numbers = [add(client, LedgerEntryKind.CHARGE, "1.00").document.sequence_number for _ in range(3)]

    assert numbers == [1, 2, 3]
    assert Document.objects.filter(kind=DocumentKind.RECEIPT).get().sequence_number == 1


def test_a_charge_refused_for_want_of_money_takes_no_number_and_leaves_no_document():
    client = ClientFactory()
    add(client, LedgerEntryKind.TOPUP, "5.00")

    with pytest.raises(InsufficientFunds):
        add(client, LedgerEntryKind.CHARGE, "5.01")

    assert not Document.objects.filter(kind=DocumentKind.INVOICE).exists()
    assert add(client, LedgerEntryKind.CHARGE, "5.00").document.sequence_number == 1


def test_a_transaction_that_fails_after_taking_a_number_leaves_no_hole():
    client = ClientFactory()
    add(client, LedgerEntryKind.TOPUP, "50.00")
    add(client, LedgerEntryKind.CHARGE, "1.00")

    with pytest.raises(RuntimeError), transaction.atomic():
        add(client, LedgerEntryKind.CHARGE, "1.00")
        raise RuntimeError("the renewal failed after its invoice was numbered")

    assert add(client, LedgerEntryKind.CHARGE, "1.00").document.sequence_number == 2
    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).count() == 2
    assert DocumentSequence.objects.get(series="INV").next_number == 3


def test_an_issued_document_cannot_be_changed_or_deleted_but_its_sending_can_be_recorded():
    client = ClientFactory()
    document = add(client, LedgerEntryKind.TOPUP, "10.00").document

    document.gross = Decimal("1.00")
    with pytest.raises(DocumentImmutable):
        document.save()
    with pytest.raises(DocumentImmutable):
        document.delete()
    document.refresh_from_db()
    document.emailed_at = document.issued_at
    document.save(update_fields=["emailed_at"])

    assert Document.objects.get(pk=document.pk).gross == Decimal("10.00")


def test_the_buyer_on_an_issued_document_stays_what_it_was():
    client = ClientFactory(name="Old name")
    document = add(client, LedgerEntryKind.TOPUP, "10.00").document
    client.name, client.address = "New name", "Somewhere else"
    client.save()

    document.refresh_from_db()
    assert document.buyer["name"] == "Old name"
    assert document.buyer["address"] == ""


@pytest.mark.parametrize(
    ("amount", "rate", "included", "net", "tax", "gross"),
    [
        ("120.00", "20", True, "100.00", "20.00", "120.00"),
        ("10.00", "20", True, "8.33", "1.67", "10.00"),
        ("100.00", "20", False, "100.00", "20.00", "120.00"),
        ("0.05", "20", False, "0.05", "0.01", "0.06"),
        ("-10.00", "20", True, "-8.33", "-1.67", "-10.00"),
        ("99.99", "0", True, "99.99", "0.00", "99.99"),
    ],
)
def test_tax_is_split_per_line_half_up_to_the_cent(amount, rate, included, net, tax, gross):
    split = tax_split(Decimal(amount), rate=Decimal(rate), prices_include_tax=included)

    assert (split.net, split.tax, split.gross) == (Decimal(net), Decimal(tax), Decimal(gross))


def test_lines_rounded_one_by_one_add_up_to_the_totals(settings):
    from billing.documents import Line
    from billing.stored_text import StoredText

    settings.BILLING_TAX_RATE, settings.BILLING_PRICES_INCLUDE_TAX = "20", True
    client = ClientFactory()
    add(client, LedgerEntryKind.TOPUP, "100.00")
    lines = [Line(StoredText(f"line {n}"), Decimal("10.00")) for n in range(3)]
    document = add(client, LedgerEntryKind.CHARGE, "30.00", lines=lines).document

    assert (document.net, document.tax, document.gross) == (Decimal("24.99"), Decimal("5.01"), Decimal("30.00"))
    assert sum(line.net for line in document.lines.all()) == document.net
    assert sum(line.tax for line in document.lines.all()) == document.tax


def test_with_tax_on_top_of_the_prices_the_client_is_charged_the_invoices_total(settings):
    settings.BILLING_TAX_RATE, settings.BILLING_PRICES_INCLUDE_TAX = "20", False
    client = ClientFactory()
    add(client, LedgerEntryKind.TOPUP, "119.99")

    with pytest.raises(InsufficientFunds):
        add(client, LedgerEntryKind.CHARGE, "100.00")
    entry = add(client, LedgerEntryKind.CHARGE, "99.99")

    assert (entry.amount, entry.document.net, entry.document.tax, entry.document.gross) == (
        Decimal("-119.99"),
        Decimal("99.99"),
        Decimal("20.00"),
        Decimal("119.99"),
    )
    assert add(client, LedgerEntryKind.TOPUP, "10.00").document.tax == Decimal("0.00")  # a receipt sells nothing


def test_an_exempt_client_is_invoiced_without_tax_and_the_reason_is_on_the_invoice(settings):
    settings.BILLING_TAX_RATE, settings.BILLING_PRICES_INCLUDE_TAX = "20", False
    client = ClientFactory(tax_exempt=True, tax_exempt_note="Reverse charge")
    add(client, LedgerEntryKind.TOPUP, "100.00")
    document = add(client, LedgerEntryKind.CHARGE, "100.00").document

    assert (document.tax_rate, document.tax, document.gross) == (Decimal("0"), Decimal("0.00"), Decimal("100.00"))
    assert document.buyer["tax_exempt_note"] == "Reverse charge"


def test_a_repeated_charge_with_the_same_key_returns_the_first_entry_and_its_invoice():
    client = ClientFactory()
    add(client, LedgerEntryKind.TOPUP, "10.00")
    first = add(client, LedgerEntryKind.CHARGE, "1.00", idempotency_key="k-1")
    again = add(client, LedgerEntryKind.CHARGE, "1.00", idempotency_key="k-1")

    assert again.pk == first.pk and again.document_id == first.document_id
    assert Document.objects.filter(kind=DocumentKind.INVOICE).count() == 1


def test_a_refund_of_an_amount_returns_that_much_money_whatever_the_tax(settings):
    settings.BILLING_TAX_RATE, settings.BILLING_PRICES_INCLUDE_TAX = "20", False
    client = ClientFactory()
    add(client, LedgerEntryKind.TOPUP, "120.00")
    invoice = add(client, LedgerEntryKind.CHARGE, "100.00").document  # 100.00 + 20.00 tax
    refund = add(client, LedgerEntryKind.REFUND, "6.00", corrects=invoice)

    assert refund.amount == Decimal("6.00")
    assert (refund.document.net, refund.document.tax, refund.document.gross) == (Decimal("-5.00"), Decimal("-1.00"), Decimal("-6.00"))


@pytest.mark.parametrize(
    ("setting", "value", "check_id"),
    [
        ("DOCUMENT_NUMBER_FORMAT", "{series}-{number:05d}", "billing.E103"),  # every year restarts at 1: INV-00001 twice
        ("DOCUMENT_NUMBER_FORMAT", "{series}-{year}-{nummer}", "billing.E103"),
        ("CREDIT_NOTE_SERIES", "INV", "billing.E104"),
        ("BILLING_TAX_RATE", "twenty", "billing.E105"),
        ("BILLING_TAX_RATE", "-5", "billing.E105"),
        ("BILLING_REFUND_ON_CLOSE", "always", "billing.E106"),
    ],
)
def test_document_settings_that_would_break_charges_stop_every_command_at_start(settings, setting, value, check_id):
    from django.core import checks

    assert check_id not in {message.id for message in checks.run_checks()}
    setattr(settings, setting, value)

    assert check_id in {message.id for message in checks.run_checks()}
