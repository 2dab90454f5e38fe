"""What staff type into a tariff is shown as text, never run as markup."""

from playwright.sync_api import expect

from billing.choices import ProductType
from tests.factories import TariffPlanFactory

MARKUP = "<script>alert(1)</script>"


def test_a_tariff_name_with_markup_shows_as_text_and_runs_nothing(page, catalog):
    # Given a tariff named with a script tag and a description with an image that would run code.
    TariffPlanFactory(
        name=MARKUP,
        name_en=MARKUP,
        description='<img src=x onerror="alert(2)">',
        product_type=ProductType.VHOST,
        processing_module=catalog.hosting.processing_module,
    )
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # When a visitor opens the shop-window and that tariff's order form.
    page.goto("/")
    expect(page.get_by_role("heading", name=MARKUP, exact=True)).to_be_visible()
    expect(page.get_by_text('<img src=x onerror="alert(2)">')).to_be_visible()
    page.get_by_role("link", name=f"Order {MARKUP}").click()
    expect(page.get_by_role("heading", name=f"Order {MARKUP}")).to_be_visible()
    expect(page).to_have_title(f"Order {MARKUP} · Hosting billing")

    # Then no script ran and no element came out of the text.
    assert dialogs == []
    assert page.locator("main img").count() == 0
    assert page.locator("script").evaluate_all("scripts => scripts.map(s => s.textContent).filter(t => t.includes('alert'))") == []
