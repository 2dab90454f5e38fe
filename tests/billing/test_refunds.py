"""Staff refunding part of an invoice: a credit note naming it, a ledger refund, once per request, never more than is left."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.urls import reverse

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


# The admin's refund page.


def refund_page(client, document):
    return client.get(reverse("admin:billing_document_refund", args=[document.pk]))


def hidden_key(page) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', page.content.decode()).group(1)


def test_staff_refund_from_the_invoice_page_and_a_double_submit_refunds_once(admin_client):
    renewed(7)
    inv7 = invoice("INV-2026-00007")
    shown = admin_client.get(reverse("admin:billing_document_change", args=[inv7.pk]))
    assert "Refund part of this invoice" in shown.content.decode()
    page = refund_page(admin_client, inv7)
    assert page.status_code == 200
    form = {"amount": "10.00", "reason": "Outage", "idempotency_key": hidden_key(page)}

    sent = [admin_client.post(page.wsgi_request.path, form) for _ in range(2)]

    note = Document.objects.get(kind=DocumentKind.CREDIT_NOTE)
    assert [response.status_code for response in sent] == [302, 302]
    assert {response["Location"] for response in sent} == {reverse("admin:billing_document_change", args=[note.pk])}
    assert (note.number, note.gross, note.corrects_id) == ("CN-2026-00001", Decimal("-10.00"), inv7.pk)
    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).count() == 1
    after = admin_client.get(reverse("admin:billing_document_change", args=[inv7.pk])).content.decode()
    assert f"10.00\xa0{inv7.currency} refunded, 0.00\xa0{inv7.currency} left." in after
    assert hidden_key(refund_page(admin_client, inv7)) != form["idempotency_key"]  # a new page is a new request


def test_the_refund_page_refuses_more_than_is_left_and_says_how_much_is_left(admin_client):
    renewed(1)
    inv = invoice("INV-2026-00001")
    page = refund_page(admin_client, inv)

    refused = admin_client.post(page.wsgi_request.path, {"amount": "10.01", "idempotency_key": hidden_key(page)})

    assert refused.status_code == 200
    assert f"At most 10.00\xa0{inv.currency} of INV-2026-00001 is left to refund." in refused.content.decode()
    assert not LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).exists()


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"amount": "abc", "idempotency_key": "k"},
        {"amount": "-5", "idempotency_key": "k"},
        {"amount": "0", "idempotency_key": "k"},
        {"amount": "1.001", "idempotency_key": "k"},
        {"amount": "1e400", "idempotency_key": "k"},
        {"amount": "NaN", "idempotency_key": "k"},
        {"amount": "99999999999999", "idempotency_key": "k"},
        {"amount": "1.00"},
        {"amount": "1.00", "idempotency_key": "k" * 500},
        {"amount": "1.00", "idempotency_key": "k", "reason": "r" * 5000},
        {"amount": "1.00\x00", "idempotency_key": "k\x00"},
    ],
)
def test_hostile_refund_forms_are_refused_without_a_server_error(admin_client, form):
    renewed(1)

    response = admin_client.post(reverse("admin:billing_document_refund", args=[invoice("INV-2026-00001").pk]), form)

    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).exists()


def test_only_an_invoice_has_a_refund_page_and_only_staff_who_may_add_ledger_entries_use_it(client, admin_client):
    renewed(1)
    receipt = Document.objects.get(kind=DocumentKind.RECEIPT)
    inv = invoice("INV-2026-00001")
    assert refund_page(admin_client, receipt).status_code == 404
    assert admin_client.get("/admin/billing/document/999999/refund/").status_code == 404
    viewer = StaffUserFactory(username="viewer@example.com", is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_document"))
    client.force_login(viewer)

    assert refund_page(client, inv).status_code == 403
    assert client.post(reverse("admin:billing_document_refund", args=[inv.pk]), {"amount": "1", "idempotency_key": "k"}).status_code == 403
    assert not LedgerEntry.objects.filter(kind=LedgerEntryKind.REFUND).exists()
