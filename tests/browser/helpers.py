"""What a visitor does again and again, in the words of the pages."""

import os
import re
import time
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Page, expect

from billing.choices import LedgerEntryKind
from billing.models import Client
from billing.services import client_register, ledger_entry_add

SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "Blue-Lantern-Harbor-42"
# The largest a committed screenshot may be.
MAX_SCREENSHOT_BYTES = 200_000


def client_create(*, email: str, balance: Decimal = Decimal("0"), language: str = "en") -> Client:
    """A registered client (password PASSWORD) with `balance` on its account."""
    client = client_register(email=email, name=f"Client {email}", password=PASSWORD, language=language)
    if balance:
        ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=balance, reference="test")
    return client


def logout_button(page: Page):
    """The header's log-out button, whatever the page's language."""
    return page.locator("form[action*='/accounts/logout/'] button[type=submit]")


def balance_shown(page: Page) -> Decimal:
    """The amount in the Balance page's heading ("Balance: 2,000.00 RUB")."""
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Balance: -?[0-9,]+\.[0-9]{2}\sRUB$"))
    return Decimal(heading.inner_text().split()[1].replace(",", ""))


def wait_for_status(page: Page, status: str, timeout: float = 10) -> None:
    """Reload the service page until its status reads `status` (up to `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    current = page.locator("#service-status")
    while current.inner_text() != status:
        assert time.monotonic() < deadline, f"the service stayed {current.inner_text()!r}, never {status!r}"
        time.sleep(0.25)
        page.reload()


def has_horizontal_scroll(page: Page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth > window.innerWidth")


def inputs_without_label(page: Page, form: str) -> list[str]:
    """The visible inputs of `form` (a CSS selector) that no <label> names."""
    return page.locator(form).evaluate(
        """form => Array.from(form.querySelectorAll("input, select, textarea"))
            .filter(el => el.type !== "hidden")
            .filter(el => !el.labels || !Array.from(el.labels).some(label => label.textContent.trim()))
            .map(el => el.name || el.id || el.outerHTML)"""
    )


def screenshot(page: Page, name: str) -> None:
    """The viewport as tests/browser/screenshots/<name>.png, the picture the README shows.

    The committed file is written when it is missing or when UPDATE_SCREENSHOTS=1: the pictures
    hold run-dependent details (service ids, the emulator's port), and a plain test run should
    not leave modified files behind.
    """
    png = page.screenshot(animations="disabled", caret="hide")
    assert len(png) < MAX_SCREENSHOT_BYTES, f"{name}.png would be {len(png)} bytes"
    path = SCREENSHOTS / f"{name}.png"
    if not path.exists() or os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        path.write_bytes(png)
