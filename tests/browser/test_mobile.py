"""On a phone (390 x 844) the shop-window and the order form fit the screen and work."""

from decimal import Decimal

from playwright.sync_api import expect

from billing.models import Service
from tests.browser.helpers import client_create, has_horizontal_scroll

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def test_on_a_phone_the_shop_and_the_order_form_fit_the_screen_and_an_order_can_be_placed(new_page, catalog, log_in_as):
    # Given a client with money, on a phone.
    client = client_create(email="phone@example.com", balance=Decimal("1000.00"))
    page = new_page(**PHONE)
    log_in_as(page, client)

    # When they open the shop-window, it has no horizontal scroll and both tariffs are there.
    page.goto("/")
    expect(page.get_by_role("link", name="Order Site hosting")).to_be_visible()
    expect(page.get_by_role("link", name="Order FTP storage 10 GB")).to_be_visible()
    assert not has_horizontal_scroll(page)

    # When they open the order form, it fits too, and they can fill it in and send it.
    page.get_by_role("link", name="Order Site hosting").click()
    assert not has_horizontal_scroll(page)
    page.get_by_label("Domain").fill("phone.example.com")
    page.get_by_label("Databases").fill("11")
    expect(page.locator("#price-per-period")).to_have_text("320.00")
    page.get_by_role("button", name="Place order").click()

    # Then the order is placed, and its page fits the screen as well.
    expect(page.locator("#service-status")).to_have_text("Ordered")
    service = Service.objects.get(client=client)
    assert (service.domain, service.price) == ("phone.example.com", Decimal("320.00"))
    expect(page.get_by_role("button", name="Pay 320.00 RUB from the balance")).to_be_in_viewport()
    assert not has_horizontal_scroll(page)
