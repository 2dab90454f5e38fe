"""Paying for a service from the balance when the balance is short."""

from decimal import Decimal

from playwright.sync_api import expect

from billing.choices import LedgerEntryKind, ServiceStatus
from billing.models import LedgerEntry, Service
from billing.services import ledger_entry_add
from provisioning.models import Operation
from tests.browser.helpers import balance_shown, client_create


def test_paying_without_enough_money_says_what_is_missing_charges_nothing_and_keeps_the_order(page, catalog, log_in_as, live_server):
    # Given a client with 100.00 on the balance, logged in.
    client = client_create(email="short@example.com", balance=Decimal("100.00"))
    log_in_as(page, client)

    # When they order the FTP storage (250.00 with the setup fee) and pay for it.
    page.goto(f"/order/{catalog.storage.pk}/")
    expect(page.locator("#price-due")).to_have_text("250.00")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#service-status")).to_have_text("Ordered")
    service = Service.objects.get(client=client)
    page.get_by_role("button", name="Pay 250.00 RUB from the balance").click()

    # Then the balance page says how much is missing.
    expect(page.get_by_role("status")).to_have_text("Not enough money on the balance: 150.00 RUB more is needed.")
    expect(page).to_have_url(f"{live_server.url}/account/balance/?amount=150.00")
    assert balance_shown(page) == Decimal("100.00")
    # And nothing was charged, nothing went to the panel, the service is still waiting for payment.
    assert list(LedgerEntry.objects.values_list("kind", "amount")) == [(LedgerEntryKind.TOPUP, Decimal("100.00"))]
    assert not Operation.objects.exists()
    service.refresh_from_db()
    assert (service.status, service.paid_at) == (ServiceStatus.ORDERED, None)
    page.goto(f"/account/services/{service.pk}/")
    expect(page.locator("#service-status")).to_have_text("Ordered")
    expect(page.get_by_role("button", name="Pay 250.00 RUB from the balance")).to_be_visible()


def test_the_balance_is_shown_to_the_cent(page, catalog, log_in_as):
    # Given a client whose balance is made of amounts with cents.
    client = client_create(email="cents@example.com", balance=Decimal("12.50"))
    for amount in ("0.10", "0.20"):
        ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal(amount), reference="test")
    log_in_as(page, client)

    # When they look at their account and their balance, both show 12.80 RUB.
    page.goto("/account/")
    expect(page.locator(".amount")).to_have_text("12.80 RUB")
    page.goto("/account/balance/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Balance: 12.80 RUB")
