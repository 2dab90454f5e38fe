"""The order form's live total reads like every amount the server prints, in the page's language."""

import re

import pytest
from django.test import Client as DjangoClient
from playwright.sync_api import expect

from billing.choices import BillingPeriod

# (language prefix, per period at 1 month / 10 databases, per period at 1 year / 12 and 50 databases).
FORMATS = [
    ("", "300.00", "3,480.00", "12,600.00"),
    ("/ru", "300,00", "3\xa0480,00", "12\xa0600,00"),
]


def server_text(url: str, element_id: str) -> str:
    """What the server itself writes into the element, before any script runs."""
    html = DjangoClient().get(url).content.decode()
    return re.search(rf'<strong id="{element_id}">([^<]*)</strong>', html).group(1)


@pytest.mark.parametrize(("prefix", "monthly", "yearly", "yearly_50"), FORMATS, ids=["en", "ru"])
def test_the_live_total_is_grouped_and_separated_as_the_server_does_it(page, catalog, prefix, monthly, yearly, yearly_50):
    url = f"{prefix}/order/{catalog.hosting.pk}/"
    page.goto(url)
    per_period, due = page.locator("#price-per-period"), page.locator("#price-due")

    # The script's first total is exactly what the server had written there.
    expect(per_period).to_have_text(monthly)
    assert per_period.text_content() == server_text(url, "price-per-period") == monthly
    assert due.text_content() == server_text(url, "price-due") == monthly

    # When the period and the quantity change, thousands are grouped the way the language groups them
    # (a non-breaking space in Russian, exactly as Django's ru format has it).
    page.locator("select[name=period]").select_option(str(BillingPeriod.YEAR))
    page.locator("input[name=databases]").fill("12")
    expect(per_period).to_have_text(yearly)  # whitespace-blind: the exact text is compared next
    assert (per_period.text_content(), due.text_content()) == (yearly, yearly)
    page.locator("input[name=databases]").fill("50")
    expect(per_period).to_have_text(yearly_50)
    assert (per_period.text_content(), due.text_content()) == (yearly_50, yearly_50)
