"""A client finds an invoice under Invoices, reads it and downloads its PDF."""

from decimal import Decimal
from pathlib import Path

from playwright.sync_api import expect

from billing.choices import LedgerEntryKind
from billing.services import ledger_entry_add
from tests.browser.helpers import client_create


def test_a_client_opens_an_invoice_and_downloads_its_pdf(page, log_in_as, tmp_path):
    # Given a client charged 40.00 for a setup.
    client = client_create(email="pdf@example.com", balance=Decimal("100.00"))
    invoice = ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("40.00"), reference="Setup").document
    log_in_as(page, client)

    # When they open Invoices from the navigation, then the invoice.
    page.goto("/account/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Invoices")
    page.get_by_role("link", name=invoice.number).click()

    # Then they read its line and total.
    expect(page.locator("#document-title")).to_have_text(f"Invoice {invoice.number}")
    expect(page.locator("#document-lines")).to_contain_text("Setup")
    expect(page.locator("#total-gross")).to_have_text("40.00 RUB")

    # And the PDF downloads under the invoice's number.
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"{invoice.number}.pdf"
    saved = Path(tmp_path) / download.suggested_filename
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")
