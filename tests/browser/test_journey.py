"""A visitor's whole way: shop-window, live price, sign-up, top-up, two orders, panel accounts, Russian."""

import re
from decimal import Decimal

from playwright.sync_api import expect

from billing.choices import BillingPeriod, ResourceKind, ServiceStatus
from billing.models import Client, Service
from billing.pricing import tariff_quote
from tests.browser.helpers import PASSWORD, balance_shown, logout_button, screenshot, wait_for_status

EMAIL = "anna@example.com"


def server_price(tariff, *, period: int, databases: int) -> str:
    """What billing.pricing charges per period, as the page prints it."""
    quote = tariff_quote(
        tariff=tariff, tariff_price=tariff.prices.get(period=period).price, period=period, quantities={ResourceKind.DATABASES: databases}
    )
    return f"{quote.price:,.2f}"


def test_a_visitor_signs_up_tops_up_orders_both_products_gets_panel_accounts_and_keeps_russian(page, catalog, panel, live_server):
    hosting, storage = catalog.hosting, catalog.storage

    # Given the shop-window, with both product types, their tariffs and prices.
    page.goto("/")
    expect(page.get_by_role("heading", name="Shared hosting")).to_be_visible()
    expect(page.get_by_role("heading", name="External FTP-storage")).to_be_visible()
    hosting_card = page.locator(".tariff").filter(has=page.get_by_role("heading", name="Site hosting"))
    storage_card = page.locator(".tariff").filter(has=page.get_by_role("heading", name="FTP storage 10 GB"))
    expect(hosting_card.locator(".prices li")).to_have_text(["300.00 RUB monthly", "3,000.00 RUB yearly"])
    expect(hosting_card).to_contain_text("Databases: 10")
    expect(storage_card.locator(".prices li")).to_have_text(["150.00 RUB monthly"])
    expect(storage_card).to_contain_text("Setup fee 100.00 RUB")
    expect(storage_card).to_contain_text("FTP users: 3")
    screenshot(page, "shop")

    # When the visitor sets 12 databases and changes the period, the live total follows the server's formula.
    page.get_by_role("link", name="Order Site hosting").click()
    expect(page.get_by_role("heading", name="Order Site hosting")).to_be_visible()
    per_period, due = page.locator("#price-per-period"), page.locator("#price-due")
    expect(per_period).to_have_text(server_price(hosting, period=BillingPeriod.MONTH, databases=10))
    page.get_by_label("Databases").fill("12")
    expect(per_period).to_have_text(server_price(hosting, period=BillingPeriod.MONTH, databases=12))
    page.get_by_label("Billing period").select_option(label="Yearly")
    expect(per_period).to_have_text(server_price(hosting, period=BillingPeriod.YEAR, databases=12))
    expect(due).to_have_text("3,480.00")
    page.get_by_label("Billing period").select_option(label="Monthly")
    expect(per_period).to_have_text("340.00")

    # When they sign up from the order form, they are logged in and back on it, with what they typed.
    page.get_by_role("button", name="Sign up to order").click()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Name or company").fill("Anna Petrova")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{live_server.url}/order/{hosting.pk}/")
    expect(logout_button(page)).to_be_visible()
    expect(page.get_by_role("button", name="Place order")).to_be_visible()
    expect(page.get_by_label("Databases")).to_have_value("12")
    expect(per_period).to_have_text("340.00")
    client = Client.objects.get(email=EMAIL)

    # When they top up 2000 with the test gateway, the balance shows it.
    page.get_by_role("link", name="Balance", exact=True).click()
    page.get_by_label("Amount").fill("2000")
    page.get_by_label("Test payment (demo)").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".status")).to_have_text("Paid")
    page.get_by_role("link", name="Balance", exact=True).click()
    assert balance_shown(page) == Decimal("2000.00")

    # When they order the FTP storage (no domain) and pay, its account opens in the panel.
    page.get_by_role("link", name="Plans").click()
    page.get_by_role("link", name="Order FTP storage 10 GB").click()
    expect(page.locator("#price-due")).to_have_text("250.00")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#service-status")).to_have_text("Ordered")
    storage_service = Service.objects.get(client=client, tariff=storage)
    page.get_by_role("button", name="Pay 250.00 RUB from the balance").click()
    wait_for_status(page, "Active")
    storage_login = f"user{storage_service.pk}"
    expect(page.locator("#panel-username")).to_have_text(storage_login)
    assert panel.app.users[storage_login]["preset"] == "FTP storage"
    assert panel.app.users[storage_login]["limits"]["limit_ftp_users"] == "3"

    # When they order Site hosting for shop.example.com with 12 databases, the price kept is the one shown.
    page.get_by_role("link", name="Plans").click()
    page.get_by_role("link", name="Order Site hosting").click()
    page.get_by_label("Domain").fill("shop.example.com")
    page.get_by_label("Databases").fill("12")
    expect(per_period).to_have_text(server_price(hosting, period=BillingPeriod.MONTH, databases=12))
    shown = Decimal(per_period.inner_text())
    page.get_by_label("Databases").blur()
    screenshot(page, "order")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#service-status")).to_have_text("Ordered")
    hosting_service = Service.objects.get(client=client, tariff=hosting)
    assert (hosting_service.price, hosting_service.domain) == (shown, "shop.example.com")

    # And pays: the account opens with the tariff's login and the 12 databases as its limit.
    page.get_by_role("button", name=f"Pay {shown} RUB from the balance").click()
    wait_for_status(page, "Active")
    hosting_login = f"user{hosting_service.pk}"
    expect(page.locator("#panel-username")).to_have_text(hosting_login)
    panel_user = panel.app.users[hosting_login]
    assert (panel_user["preset"], panel_user["limits"]["limit_db"]) == ("Site hosting", "12")
    assert set(panel.app.users) == {storage_login, hosting_login}
    assert set(Service.objects.filter(client=client).values_list("status", flat=True)) == {ServiceStatus.ACTIVE}
    page.reload()
    screenshot(page, "service")

    # "Show password" asks for the client's own password, then shows the panel's.
    expect(page.locator("#panel-password")).to_have_count(0)
    page.get_by_label("Enter your password to see it").fill("not-my-password")
    page.get_by_role("button", name="Show password").click()
    expect(page.get_by_text("That is not your password.")).to_be_visible()
    expect(page.locator("#panel-password")).to_have_count(0)
    page.get_by_label("Enter your password to see it").fill(PASSWORD)
    page.get_by_role("button", name="Show password").click()
    expect(page.locator("#panel-password")).to_have_text(panel_user["password"])

    # Both first payments came off the balance.
    page.get_by_role("link", name="Balance", exact=True).click()
    assert balance_shown(page) == Decimal("2000.00") - Decimal("250.00") - shown

    # When they switch to Russian, the pages are in Russian.
    page.get_by_role("button", name="RU").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    page.goto("/ru/")
    expect(page.get_by_role("heading", name="Виртуальный хостинг")).to_be_visible()
    expect(page.get_by_role("heading", name="Хостинг сайтов")).to_be_visible()
    expect(page.get_by_role("heading", name="FTP-хранилище 10 ГБ")).to_be_visible()
    client.refresh_from_db()
    assert client.language == "ru"

    # Then after logging out and in again (no cookies left), Russian comes back.
    logout_button(page).click()
    expect(logout_button(page)).to_have_count(0)
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page).to_have_url(re.compile(r"/ru/account/$"))
    expect(page.get_by_role("cell", name="Хостинг сайтов")).to_be_visible()
    expect(page.get_by_text("Активен").first).to_be_visible()
