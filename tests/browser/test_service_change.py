"""A client upgrades a service mid-period: the live preview shows the exact charge as the tariff is chosen,
the yes books it, the service is on the new tariff and the invoice (page and PDF) names the change.

The server's clock is moved with time_machine (the live server runs in this process), so the amount is
known: paid on 2027-05-01 for a month (until 2027-06-01, 31 days), upgraded on 2027-05-17 (15 days left).
The dates are after today's, so the cookies the server sets do not look expired to Chromium.
"""

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import time_machine
from django.utils import translation
from django.utils.formats import date_format
from playwright.sync_api import expect

from billing.choices import DocumentKind, ResourceKind, ServiceStatus
from billing.models import Document
from billing.services import service_mark_paid
from tests.browser.helpers import client_create, has_horizontal_scroll, screenshot
from tests.factories import ServiceFactory, ServiceResourceFactory, TariffPlanFactory, TariffResourceFactory

PAID = datetime(2027, 5, 1, 10, 0, tzinfo=UTC)
CHANGED = datetime(2027, 5, 17, 12, 0, tzinfo=UTC)
PHONE_375 = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def clock():
    """The server's clock, ticking from the day the service is paid; `clock.move_to(...)` jumps."""
    with time_machine.travel(PAID, tick=True) as traveller:
        yield traveller


def plan(module, name, price):
    tariff = TariffPlanFactory(
        name=name, name_en=name, name_ru=name, processing_module=module, account_template="Site hosting",
        username_template="user@ID@", monthly_price=Decimal(price),
    )  # fmt: skip
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=1, unit_price=Decimal("1.50"), max_quantity=10)
    return tariff


@pytest.fixture
def plans(catalog):
    module = catalog.hosting.processing_module
    return {"T10": plan(module, "T10", "10.00"), "T20": plan(module, "T20", "20.00")}


@pytest.fixture
def site(clock, plans):
    """An active site on T10 whose account the emulator created when it was paid on PAID; the clock then stands at CHANGED."""
    client = client_create(email="change@example.com", balance=Decimal("100.00"))
    service = ServiceFactory(client=client, tariff=plans["T10"], ordered_by=client.users.get(), price=Decimal("10.00"))
    ServiceResourceFactory(service=service, kind=ResourceKind.DATABASES, quantity=1)
    service_mark_paid(service=service)
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE and service.panel_username
    clock.move_to(CHANGED)
    return service


def expected_charge(service, old_price: Decimal, new_price: Decimal) -> Decimal:
    """The issue's formula on the service's own dates: (new - old) * days left / days in the period, half-up to the cent."""
    period_start, period_end, today = service.period_anchor.date(), service.expires_at.date(), CHANGED.date()
    days_left, days_in_period = (period_end - today).days, (period_end - period_start).days
    return ((new_price - old_price) * days_left / days_in_period).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_a_client_upgrades_with_the_live_preview_and_downloads_the_invoice(page, log_in_as, site, plans, tmp_path):
    assert (site.period_anchor.date(), site.expires_at.date()) == (date(2027, 5, 1), date(2027, 6, 1))
    charge = expected_charge(site, Decimal("10.00"), Decimal("20.00"))
    assert charge == Decimal("4.84")  # 10.00 * 15 / 31
    script_errors = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    log_in_as(page, site.client)

    # When the client opens the change page from the service and picks T20.
    page.goto(f"/account/services/{site.pk}/")
    page.locator("#change-service").click()
    page.wait_for_load_state()  # the live preview's script runs as the page loads: a choice made before it would go unseen
    expect(page.locator("#change-preview")).to_be_hidden()
    change_page = page.url
    page.get_by_label("Tariff").select_option(str(plans["T20"].pk))

    # Then the preview answers in the page, without a reload: the exact charge and the new price per period.
    live = page.locator("#change-live")
    expect(live).to_have_attribute("aria-live", "polite")
    expect(page.locator("#change-preview")).to_be_visible()
    expect(page.locator("#change-amount")).to_have_text(f"{charge} RUB")
    expect(page.locator("#change-amount-label")).to_have_text("Charged now from your balance")
    expect(page.locator("#change-price")).to_have_text("10.00 RUB → 20.00 RUB")
    expect(page.locator("#change-days")).to_have_text("15 / 31")
    expect(page.locator("#change-text")).to_have_text("T10 → T20")
    expect(page.locator("#change-yes")).to_have_text(f"Yes, change it for {charge} RUB")
    assert page.url == change_page
    screenshot(page, "service-change-en")

    # A quantity above the limit: the field's error instead of an amount; back to 1: the amount again.
    databases = page.get_by_label("Databases")
    databases.fill("99")
    expect(page.locator("#change-live-errors")).to_contain_text("Databases:")
    expect(page.locator("#change-preview")).to_be_hidden()
    expect(databases).to_have_attribute("aria-invalid", "true")
    databases.select_text()
    page.keyboard.type("1")  # typed, as a person does: "change" fires only when the field is left
    expect(page.locator("#change-preview")).to_be_visible()
    expect(page.locator("#change-amount")).to_have_text(f"{charge} RUB")
    expect(page.locator("#change-yes")).to_be_enabled()

    # When they confirm straight from the field they typed in (a real click: leaving the field fires "change",
    # which must not disable the "yes" under the pointer for values already shown).
    box = page.locator("#change-yes").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    # Then the service is on T20, the next renewals cost 20.00 and the expiry did not move.
    expect(page.get_by_role("heading", level=1)).to_contain_text("T20")
    expect(page.locator(".message.success")).to_contain_text(f"Service #{site.pk} is changed")
    with translation.override("en"):
        expect(page.locator("#service-expires")).to_have_text(date_format(date(2027, 6, 1), "DATE_FORMAT"))
    expect(page.locator("dl.facts")).to_contain_text("20.00 RUB")

    # And the invoice of the change is under Invoices, with its line, and downloads as a PDF.
    invoice = Document.objects.filter(client=site.client, kind=DocumentKind.INVOICE).latest("issued_at", "pk")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    page.get_by_role("link", name=invoice.number).click()
    line = page.locator("#document-lines tbody tr").filter(has_text="T10 → T20")
    expect(line).to_have_count(1)
    with translation.override("en"):
        period = f"{date_format(date(2027, 5, 17), 'DATE_FORMAT')} \N{EN DASH} {date_format(date(2027, 6, 1), 'DATE_FORMAT')}"
    expect(line).to_contain_text(period)
    expect(line).to_contain_text(f"{charge} RUB")
    expect(page.locator("#total-gross")).to_have_text(f"{charge} RUB")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    saved = Path(tmp_path) / "invoice.pdf"
    download_info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    assert not script_errors


@pytest.mark.parametrize(("device", "language"), [("desktop", "ru"), ("phone-375", "en")])
def test_the_live_preview_fits_in_russian_and_on_a_phone(new_page, log_in_as, site, plans, device, language):
    page = new_page(**PHONE_375) if device == "phone-375" else new_page()
    log_in_as(page, site.client)
    prefix = "" if language == "en" else "/ru"

    page.goto(f"{prefix}/account/services/{site.pk}/change/")
    page.locator("#id_tariff").select_option(str(plans["T20"].pk))

    amount = "4.84 RUB" if language == "en" else "4,84 RUB"
    expect(page.locator("#change-amount")).to_have_text(amount)
    expect(page.locator("#change-yes")).to_contain_text(amount)
    assert not has_horizontal_scroll(page)
    for part in ("#change-form", "#change-preview", "#change-yes"):
        box = page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"], part
    page.locator("#change-preview").scroll_into_view_if_needed()
    screenshot(page, f"service-change-{language}" if device == "desktop" else f"phone-375-service-change-{language}")


def test_without_javascript_the_button_shows_the_amount(new_page, log_in_as, site, plans):
    page = new_page(java_script_enabled=False)
    log_in_as(page, site.client)

    page.goto(f"/account/services/{site.pk}/change/")
    expect(page.locator("#change-preview")).to_be_hidden()
    page.locator("#id_tariff").select_option(str(plans["T20"].pk))
    page.get_by_role("button", name="Show what it costs").click()

    expect(page.locator("#change-amount")).to_have_text("4.84 RUB")
    expect(page.locator("#change-yes")).to_have_text("Yes, change it for 4.84 RUB")
