"""The client's invoices, credit notes and receipts: the list, each document's page and its PDF, as the client reads them."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext_noop

from billing.choices import LedgerEntryKind
from billing.documents import Line
from billing.models import Document
from billing.services import ledger_entry_add
from billing.stored_text import Day, StoredText
from tests.billing.test_client_pages import Page
from tests.factories import ClientFactory

RENEWED = gettext_noop("Service #%(id)d is renewed until %(until)s")  # a msgid the Russian catalogue translates


@pytest.fixture
def taxed(settings):
    """20% added on top of the prices, and the issuer's details as the documents copy them."""
    settings.BILLING_TAX_RATE = "20"
    settings.BILLING_PRICES_INCLUDE_TAX = False
    settings.ISSUER_NAME = "Hosting Ltd"
    settings.ISSUER_ADDRESS = "1 Server Street\nDataville"
    settings.ISSUER_TAX_ID = "ISS-42"
    settings.ISSUER_BANK_DETAILS = "IBAN XX00 1234"


@pytest.fixture
def invoice(customer, taxed):
    """Two lines: 2 x 12.50 for a period, and 5.00 without one; 20% tax on top: 30.00 + 6.00."""
    customer.address, customer.tax_id = "5 Flour Lane", "BUY-7"
    customer.save()
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.00"))
    entry = ledger_entry_add(
        client=customer,
        kind=LedgerEntryKind.CHARGE,
        amount=Decimal("36.00"),
        lines=[
            Line(
                description=StoredText(RENEWED, {"id": 7, "until": Day(date(2026, 5, 31))}),
                amount=Decimal("25.00"),
                quantity=2,
                period_start=date(2026, 4, 30),
                period_end=date(2026, 5, 31),
            ),
            Line(description=StoredText(verbatim="Setup"), amount=Decimal("5.00")),
        ],
    )
    return entry.document


def document_url(document, name="document_detail"):
    return reverse(name, args=[document.pk])


def test_the_list_shows_the_clients_documents_of_every_kind_and_no_one_elses(logged_in, customer, invoice):
    credit_note = ledger_entry_add(client=customer, kind=LedgerEntryKind.REFUND, amount=Decimal("6.00"), corrects=invoice).document
    receipt = customer.documents.get(kind="receipt")
    stranger = ClientFactory()
    ledger_entry_add(client=stranger, kind=LedgerEntryKind.TOPUP, amount=Decimal("5.00"))
    foreign = stranger.documents.get()

    response = logged_in.get(reverse("documents"))

    assert response.status_code == 200
    rows = Page(response).table()[1:]
    assert [row[0] for row in rows] == [credit_note.number, invoice.number, receipt.number]
    assert [row[2] for row in rows] == ["Credit note", "Invoice", "Receipt"]
    assert (rows[0][3], rows[1][3], rows[2][3]) == ("-6.00 RUB", "36.00 RUB", "100.00 RUB")  # a refund returns 6.00, tax included
    assert foreign.number not in response.content.decode()
    assert f'href="{document_url(invoice)}"' in response.content.decode()


def test_invoices_are_in_the_navigation(logged_in):
    assert f'href="{reverse("documents")}"' in logged_in.get(reverse("client_area")).content.decode()


def test_an_invoice_page_shows_both_parties_as_issued_its_lines_and_totals(logged_in, customer, invoice):
    customer.address = "moved away"
    customer.save()  # the invoice keeps the details it was issued with

    page = Page(logged_in.get(document_url(invoice)))

    assert invoice.number in page.text("document-title")
    assert "Hosting Ltd" in page.text("document-issuer") and "ISS-42" in page.text("document-issuer")
    assert "IBAN XX00 1234" in page.text("document-issuer")
    buyer = page.text("document-buyer")
    assert "Ann's Bakery" in buyer and "5 Flour Lane" in buyer and "BUY-7" in buyer and "moved away" not in buyer
    assert page.table()[1:] == [
        [
            "Service #7 is renewed until May 31, 2026",
            "April 30, 2026 \u2013 May 31, 2026",
            "2",
            "12.50 RUB",
            "25.00 RUB",
            "5.00 RUB",
            "30.00 RUB",
        ],
        ["Setup", "—", "1", "5.00 RUB", "5.00 RUB", "1.00 RUB", "6.00 RUB"],
    ]
    assert (page.text("total-net"), page.text("total-tax"), page.text("total-gross")) == ("30.00 RUB", "6.00 RUB", "36.00 RUB")
    assert "Tax 20%" in page.text("document-totals")


def test_a_credit_note_names_its_invoice_and_the_invoice_shows_what_was_refunded(logged_in, customer, invoice):
    first = ledger_entry_add(client=customer, kind=LedgerEntryKind.REFUND, amount=Decimal("6.00"), corrects=invoice).document
    ledger_entry_add(client=customer, kind=LedgerEntryKind.REFUND, amount=Decimal("4.00"), corrects=invoice)

    note = Page(logged_in.get(document_url(first)))
    assert invoice.number in note.text("document-corrects")
    assert f'href="{document_url(invoice)}"' in logged_in.get(document_url(first)).content.decode()

    page = Page(logged_in.get(document_url(invoice)))
    assert "Refunded by credit notes: 10.00 RUB" in page.text("document-refunds")  # 6.00 + 4.00 of money returned
    assert first.number in page.text("document-refunds")


def test_the_line_descriptions_are_in_the_readers_language(logged_in, customer, invoice):
    customer.language = "ru"
    customer.save()
    with translation.override("ru"):
        url = document_url(invoice)
    page = Page(logged_in.get(url))
    assert page.table()[1][0] == "Услуга #7 продлена до 31 мая 2026 г."  # noqa: RUF001


def test_the_pdf_downloads_as_an_attachment_named_after_the_number(logged_in, invoice):
    response = logged_in.get(document_url(invoice, "document_download"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f"attachment; filename={invoice.number}.pdf"
    assert response.content.startswith(b"%PDF-")
    assert b"%%EOF" in response.content[-32:]


def test_another_clients_documents_are_not_found(logged_in, taxed):
    stranger = ClientFactory()
    ledger_entry_add(client=stranger, kind=LedgerEntryKind.TOPUP, amount=Decimal("50.00"))
    document = ledger_entry_add(client=stranger, kind=LedgerEntryKind.CHARGE, amount=Decimal("10.00")).document

    assert logged_in.get(document_url(document)).status_code == 404
    assert logged_in.get(document_url(document, "document_download")).status_code == 404
    assert logged_in.get(reverse("document_detail", args=[2_000_000_000])).status_code == 404


def test_a_visitor_is_sent_to_log_in(client, invoice):
    for url in (reverse("documents"), document_url(invoice), document_url(invoice, "document_download")):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_hostile_page_numbers_show_a_page(logged_in, invoice):
    for page in ("0", "-1", "x", "99999999999999999999"):
        assert logged_in.get(reverse("documents"), {"page": page}).status_code == 200


def test_the_list_takes_the_same_queries_with_500_documents(logged_in, customer):
    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert logged_in.get(reverse("documents")).status_code == 200
        return len(captured)

    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1.00"))
    few = queries()
    for _ in range(499):
        ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1.00"))
    assert Document.objects.filter(client=customer).count() == 500

    # The session, the user, the client, the count and the page of 50.
    assert queries() == few == 5
    second = logged_in.get(reverse("documents"), {"page": 2})
    assert len(Page(second).table()) == 51


# The admin


def test_staff_list_documents_with_the_same_queries_for_500(admin_client, customer):
    def queries(**params):
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse("admin:billing_document_changelist"), params)
        assert response.status_code == 200
        return len(captured), response

    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("1.00"))
    admin_client.get(reverse("admin:billing_document_changelist"))  # warm the session and content types
    few, _ = queries()
    for _ in range(499):
        ledger_entry_add(client=ClientFactory(), kind=LedgerEntryKind.TOPUP, amount=Decimal("1.00"))
    many, response = queries()
    assert response.context["cl"].result_count == 500
    assert many == few == 7  # session, user, the filters' series and years, two counts, the page with its clients
    _, response = queries(q=customer.name)
    assert [row.client for row in response.context["cl"].result_list] == [customer]


def test_staff_read_a_document_with_its_lines_and_download_its_pdf(admin_client, invoice):
    page = admin_client.get(reverse("admin:billing_document_change", args=[invoice.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Service #7 is renewed until May 31, 2026" in text and "Setup" in text
    pdf_url = reverse("admin:billing_document_pdf", args=[invoice.pk])
    assert f'href="{pdf_url}"' in text
    assert 'name="_save"' not in text  # read-only: nothing to save

    response = admin_client.get(pdf_url)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert response["Content-Disposition"] == f"attachment; filename={invoice.number}.pdf"
    assert admin_client.get(reverse("admin:billing_document_pdf", args=[2_000_000_000])).status_code == 404


def test_a_client_cannot_download_from_the_admin(logged_in, invoice):
    response = logged_in.get(reverse("admin:billing_document_pdf", args=[invoice.pk]))
    assert response.status_code == 302 and not response.content.startswith(b"%PDF")


def test_staff_see_the_clients_billing_details_in_their_own_fieldset(admin_client, customer):
    response = admin_client.get(reverse("admin:billing_client_change", args=[customer.pk]))
    fieldsets = [(name, options["fields"]) for name, options in response.context["adminform"].fieldsets]
    assert ("Billing details", ["address", "tax_id", "tax_exempt", "tax_exempt_note"]) in fieldsets
