"""Open control panel in a browser: the client (or staff, in a new tab) presses the button and lands in
the ISPmanager emulator logged in as the service's panel user, without typing a password; the button
fits a 375 px phone and the Russian page."""

from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.test import Client as DjangoClient
from playwright.sync_api import expect

from billing.choices import ServiceStatus
from billing.services import service_mark_paid
from tests.browser.helpers import client_create, has_horizontal_scroll, screenshot
from tests.factories import ServiceFactory

PHONE_375 = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}


@pytest.fixture
def site(catalog):
    """An active site whose account the emulator created when the order was paid."""
    client = client_create(email="panel@example.com", balance=Decimal("1000.00"))
    service = ServiceFactory(client=client, tariff=catalog.hosting, ordered_by=client.users.get(), price=Decimal("300.00"))
    service_mark_paid(service=service)
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE and service.panel_username
    return service


@pytest.mark.parametrize(("device", "language"), [("desktop", "en"), ("phone-375", "en"), ("desktop", "ru")])
def test_the_client_opens_its_panel_without_a_password(new_page, log_in_as, panel, site, device, language):
    prefix = "" if language == "en" else "/ru"
    page = new_page(**PHONE_375) if device == "phone-375" else new_page()
    log_in_as(page, site.client)

    page.goto(f"{prefix}/account/services/{site.pk}/")
    button = page.locator("#open-panel")
    expect(button).to_be_visible()
    assert not has_horizontal_scroll(page)
    box = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]
    screenshot(page, f"{device}-open-panel-{language}" if device != "desktop" else f"open-panel-{language}")

    button.click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Logged in as {site.panel_username}")
    assert page.url.startswith(f"{panel.url}?")
    if device == "desktop" and language == "en":
        screenshot(page, "open-panel-landed")


def test_a_suspended_service_shows_no_button(new_page, log_in_as, site):
    site.status = ServiceStatus.SUSPENDED
    site.save(update_fields=["status"])
    page = new_page()
    log_in_as(page, site.client)

    page.goto(f"/account/services/{site.pk}/")

    expect(page.locator("#service-status")).to_have_text("Suspended")
    expect(page.locator("#open-panel")).to_have_count(0)


def test_staff_open_the_clients_panel_in_a_new_tab(new_page, live_server, staff_user, site):
    page = new_page()
    django_client = DjangoClient()
    django_client.force_login(staff_user)
    session = django_client.cookies[django_settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])

    page.goto(f"/admin/billing/service/{site.pk}/change/")
    screenshot(page, "admin-open-panel")
    with page.context.expect_page() as opened:
        page.locator("#open-panel").click()
    panel_page = opened.value

    expect(panel_page.get_by_role("heading", level=1)).to_have_text(f"Logged in as {site.panel_username}")
    expect(page.locator("#open-panel")).to_be_visible()  # the admin page stays where it was
