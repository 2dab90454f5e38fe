"""A 375 px phone (the narrowest common one), in English and Russian: long names wrap, nothing widens the page,
the services table and the header fit, and Delete / Suspend stand one under the other and ask first."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.choices import ServiceStatus
from billing.models import Service
from provisioning.models import Operation
from tests.browser.helpers import client_create, has_horizontal_scroll, screenshot
from tests.factories import IPAssignmentFactory, ServiceFactory

PHONE_375 = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}
LONG_NAME = "Averyveryverylongcompanynamewithoutasinglespacethatmustwrapsomewhere Ltd"
LONG_DOMAIN = "a-very-long-subdomain-label-for-testing-wrapping-on-phones-12345.shop.example.com"
LONG_TARIFF = {
    "en": "Hosting for online shops with daily backups and priority support",
    "ru": "Хостинг для интернет-магазинов: ежедневное резервное копирование и приоритетная поддержка",
}

def fits(page, selector: str) -> bool:
    """The element is no wider than the screen and has nothing hidden to its right."""
    return page.locator(selector).first.evaluate(
        "el => el.scrollWidth <= el.clientWidth + 1 && el.getBoundingClientRect().right <= window.innerWidth + 1"
    )


def one_under_the_other(first, second) -> bool:
    a, b = first.bounding_box(), second.bounding_box()
    return a["y"] + a["height"] <= b["y"] + 1


@pytest.fixture
def owner(catalog, settings):
    """A client with a long name, an active site with a long domain and a dedicated IP, an unpaid FTP storage.

    Panel work stays queued (it is not what these tests look at): a request shows as pending.
    """
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    client = client_create(email="long-names@example.com", balance=Decimal("1000.00"))
    client.name = LONG_NAME
    client.save(update_fields=["name"])
    hosting = catalog.hosting
    hosting.name_en, hosting.name_ru = LONG_TARIFF["en"], LONG_TARIFF["ru"]
    hosting.save()
    site = ServiceFactory(
        client=client,
        tariff=hosting,
        domain=LONG_DOMAIN,
        price=Decimal("300.00"),
        status=ServiceStatus.ACTIVE,
        panel_username="user1234567890",
        panel_password="Pa9-panel-secret-Zq",
        paid_at="2025-01-01T00:00Z",
    )
    IPAssignmentFactory(service=site, address="133.31.223.17")
    ServiceFactory(client=client, tariff=catalog.storage, domain="", price=Decimal("150.00"), setup_fee=Decimal("100.00"))
    return client


@pytest.mark.parametrize("language", ["en", "ru"])
def test_on_a_375_px_phone_every_client_page_fits_and_long_names_wrap(new_page, log_in_as, owner, language):
    prefix = "" if language == "en" else "/ru"
    site = Service.objects.get(client=owner, domain=LONG_DOMAIN)
    page = new_page(**PHONE_375)
    log_in_as(page, owner)

    for name, path in [
        ("shop", "/"),
        ("dashboard", "/account/"),
        ("service", f"/account/services/{site.pk}/"),
        ("confirm-delete", f"/account/services/{site.pk}/action/?action=close"),
        ("balance", "/account/balance/"),
        ("orders", "/account/orders/"),
    ]:
        page.goto(prefix + path)
        expect(page.locator("html")).to_have_attribute("lang", language)
        assert not has_horizontal_scroll(page), f"{name} ({language}) scrolls sideways"
        assert fits(page, ".site-header"), f"the header of {name} ({language}) is wider than the phone"
        if page.locator("table.stack").count():
            assert fits(page, ".table-scroll"), f"the services table of {name} ({language}) is wider than the phone"
        screenshot(page, f"phone-375-{name}-{language}")


@pytest.mark.parametrize("language", ["en", "ru"])
def test_on_a_375_px_phone_suspend_and_delete_stand_apart_and_delete_asks_first(new_page, log_in_as, owner, language):
    prefix = "" if language == "en" else "/ru"
    site = Service.objects.get(client=owner, domain=LONG_DOMAIN)
    page = new_page(**PHONE_375)
    log_in_as(page, owner)
    page.goto(f"{prefix}/account/services/{site.pk}/")
    # Found by what they do rather than by their words, which differ by language.
    suspend, delete = page.locator(".actions a[href$='action=suspend']"), page.locator(".actions a[href$='action=close']")
    yes, no = page.locator(".confirm-actions button[name=confirm]"), page.locator(".confirm-actions a")

    # The long domain and the dedicated address are on the page, inside the screen.
    expect(page.locator("#service-domain")).to_have_text(LONG_DOMAIN)
    expect(page.locator("#service-addresses")).to_have_text("133.31.223.17")
    assert fits(page, "#service-domain")

    # Suspend and Delete are one under the other, not side by side.
    assert one_under_the_other(suspend, delete)

    # Delete opens the confirmation; its two buttons are one under the other too, and "No" changes nothing.
    delete.click()
    expect(yes).to_be_visible()
    expect(page.locator("#what-happens")).to_contain_text("user1234567890")
    assert one_under_the_other(yes, no)
    assert not has_horizontal_scroll(page)
    no.click()
    expect(page.locator("#service-status")).to_have_count(1)
    assert not Operation.objects.exists()

    # "Yes" asks the panel; the page then says it is on its way and offers neither button again.
    delete.click()
    yes.click()
    expect(page.locator("#pending-action")).to_be_visible()
    expect(suspend).to_have_count(0)
    expect(delete).to_have_count(0)
    assert list(Operation.objects.values_list("service_id", "action")) == [(site.pk, "close")]
    page.locator("#pending-action").scroll_into_view_if_needed()
    screenshot(page, f"phone-375-delete-requested-{language}")
