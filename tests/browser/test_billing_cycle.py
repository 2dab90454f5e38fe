"""The billing cycle as a client sees it: "paid until", auto-renew switched off, Renew now with its confirmation,
the new date and balance; on a desktop, on a 375 px phone, and under /ru/.

The service is paid well ahead (until 2030) so that the pages read the same whatever day the test runs:
its anchor day is the 31st, so the end of February is clamped to the 28th and the next period ends on 31 March.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.choices import LedgerEntryKind, ServiceStatus
from billing.models import LedgerEntry, Service
from tests.browser.helpers import client_create, has_horizontal_scroll, screenshot
from tests.factories import ServiceFactory, TariffPlanFactory

PHONE_375 = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}

# What each language shows; the Russian dates and amounts come from Django's formats, not from the project's catalog.
SHOWN = {
    "en": {"paid": "Feb. 28, 2030", "next": "Feb. 25, 2030 · 10.00\xa0RUB", "renewed": "March 31, 2030", "amount": "10.00\xa0RUB"},
    "ru": {
        "paid": "28 февраля 2030 г.",  # noqa: RUF001
        "next": "25 февраля 2030 г. · 10,00\xa0RUB",  # noqa: RUF001
        "renewed": "31 марта 2030 г.",  # noqa: RUF001
        "amount": "10,00\xa0RUB",
    },
}
BALANCE_AFTER = {"en": "15.00\xa0RUB", "ru": "15,00\xa0RUB"}


@pytest.fixture
def owner(db, settings):
    """A client with 25.00 on the balance and a monthly site at 10.00, paid until 28 February 2030 10:00 UTC."""
    settings.TIME_ZONE = "UTC"
    client = client_create(email="cycle@example.com", balance=Decimal("25.00"))
    ServiceFactory(
        client=client,
        tariff=TariffPlanFactory(name="Site hosting", name_en="Site hosting", name_ru="Хостинг сайтов", monthly_price=Decimal("10.00")),
        domain="bakery.example.com",
        price=Decimal("10.00"),
        status=ServiceStatus.ACTIVE,
        paid_at=datetime(2026, 1, 31, 10, tzinfo=UTC),
        period_anchor=datetime(2026, 1, 31, 10, tzinfo=UTC),
        expires_at=datetime(2030, 2, 28, 10, tzinfo=UTC),
    )
    return client


@pytest.mark.parametrize(("device", "language"), [("desktop", "en"), ("phone-375", "en"), ("desktop", "ru")])
def test_a_client_sees_paid_until_turns_auto_renew_off_and_renews_now(new_page, log_in_as, live_server, owner, device, language):
    prefix, shown = ("" if language == "en" else "/ru"), SHOWN[language]
    service = Service.objects.get(client=owner)
    page = new_page(**PHONE_375) if device == "phone-375" else new_page()
    log_in_as(page, owner)
    name = f"{device}-billing-cycle" if device != "desktop" else "billing-cycle"

    # The list of services says until when each is paid and when the next charge comes.
    page.goto(f"{prefix}/account/")
    expect(page.locator(f"#service-row-{service.pk}")).to_contain_text(shown["paid"])
    expect(page.locator(f"#service-row-{service.pk}")).to_contain_text(shown["next"])
    assert not has_horizontal_scroll(page)

    # The service page: paid until 28 February 2030, renewed from the balance three days before.
    page.goto(f"{prefix}/account/services/{service.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#service-expires")).to_have_text(shown["paid"])
    expect(page.locator("#service-next-charge")).to_have_text(shown["next"])
    screenshot(page, f"{name}-service-{language}")

    # Auto-renew off: the next charge is gone.
    page.locator("form[action$='/auto-renew/'] button[type=submit]").click()
    expect(page.locator("#service-next-charge")).to_have_count(0)
    expect(page).to_have_url(f"{live_server.url}{prefix}/account/services/{service.pk}/")
    service.refresh_from_db()
    assert service.auto_renew is False
    if language == "en":
        expect(page.locator("#service-auto-renew")).to_have_text("Off")

    # Renew now, one period: a confirmation with the amount and the new date comes first, and charges nothing yet.
    renew = page.locator("#renew-now")
    choices = renew.locator("select[name=periods] option")
    expect(choices).to_have_count(12)
    expect(choices.first).to_contain_text(shown["amount"])
    if language == "en":
        expect(choices.nth(2)).to_have_text("3 months — 30.00\xa0RUB")
    renew.locator("select[name=periods]").select_option("1")
    renew.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{live_server.url}{prefix}/account/services/{service.pk}/renew/?periods=1&expires=2030-02-28T10%3A00%3A00%2B00%3A00")
    expect(page.locator("#renew-amount")).to_have_text(shown["amount"])
    expect(page.locator("#renew-until")).to_have_text(f"{shown['paid']} → {shown['renewed']}")
    assert not LedgerEntry.objects.filter(client=owner, kind=LedgerEntryKind.CHARGE).exists()
    assert not has_horizontal_scroll(page)
    screenshot(page, f"{name}-confirm-{language}")

    # Yes: back on the service page, paid until 31 March 2030, 10.00 taken from the 25.00.
    page.locator(".confirm-actions button[name=confirm]").click()
    expect(page).to_have_url(f"{live_server.url}{prefix}/account/services/{service.pk}/")
    expect(page.locator("#service-expires")).to_have_text(shown["renewed"])
    expect(page.locator(".message.success")).to_contain_text(shown["renewed"])
    expect(page.locator(".message.success")).to_contain_text(BALANCE_AFTER[language])
    expect(page.locator("#renew-balance")).to_have_text(BALANCE_AFTER[language])
    assert not has_horizontal_scroll(page)
    screenshot(page, f"{name}-renewed-{language}")
    service.refresh_from_db()
    assert service.expires_at == datetime(2030, 3, 31, 10, tzinfo=UTC)
    assert list(LedgerEntry.objects.filter(client=owner, kind=LedgerEntryKind.CHARGE).values_list("amount", flat=True)) == [
        Decimal("-10.00")
    ]

    # The back button does not bring the old confirmation back: it was for the old date, and nothing more is charged.
    page.go_back()
    expect(page).to_have_url(f"{live_server.url}{prefix}/account/services/{service.pk}/")
    expect(page.locator(".message.info")).to_contain_text(f"#{service.pk}")
    expect(page.locator("#service-expires")).to_have_text(shown["renewed"])
    assert LedgerEntry.objects.filter(client=owner, kind=LedgerEntryKind.CHARGE).count() == 1
