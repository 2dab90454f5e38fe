"""Paying for a service from the balance when the balance is short."""

from decimal import Decimal

from playwright.sync_api import expect

from billing.choices import LedgerEntryKind, ServiceStatus
from billing.models import LedgerEntry, Service
from billing.services import ledger_entry_add
from provisioning.models import Operation
from tests.browser.helpers import balance_shown, client_create, wait_for_status


def test_paying_without_enough_money_says_what_is_missing_then_a_top_up_offers_to_pay_the_order_now(page, catalog, log_in_as, live_server):
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
    expect(page).to_have_url(f"{live_server.url}/account/balance/?amount=150.00&service={service.pk}")
    assert balance_shown(page) == Decimal("100.00")
    # And nothing was charged, nothing went to the panel, the service is still waiting for payment.
    assert list(LedgerEntry.objects.values_list("kind", "amount")) == [(LedgerEntryKind.TOPUP, Decimal("100.00"))]
    assert not Operation.objects.exists()
    service.refresh_from_db()
    assert (service.status, service.paid_at) == (ServiceStatus.ORDERED, None)

    # When they top up the missing amount, the payment's page offers to pay the order now.
    expect(page.get_by_label("Amount")).to_have_value("150.00")
    page.get_by_label("Test payment (demo)").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".status")).to_have_text("Paid")
    offer = page.locator(f"#pay-now-{service.pk}")
    expect(offer).to_contain_text(f"Order #{service.pk}")
    expect(offer).to_contain_text("250.00 RUB")

    # Then "Pay now" pays it from the balance and its account is opened.
    offer.get_by_role("button", name="Pay now").click()
    expect(page.get_by_role("status")).to_have_text("Paid. Your account is being created: this takes a few seconds.")
    wait_for_status(page, "Active")
    assert balance_shown_after(page) == Decimal("0.00")


def balance_shown_after(page):
    page.get_by_role("link", name="Balance", exact=True).click()
    return balance_shown(page)


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
