"""Amounts of money as people read them: one format per language, the same on every page.

Grouping and separators come from Django's locale formats (en `1,000.00`, ru `1 000,00` with a
non-breaking space); the currency code follows the amount after a non-breaking space. order.js
formats the live total the same way with Intl.NumberFormat.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils.formats import number_format

CENT = Decimal("0.01")
NBSP = "\xa0"


def money_format(amount, currency: str = "") -> str:
    """`amount` to the cent in the active language, followed by `currency` when given; "" for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount)).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return str(amount)  # not a number: shown as it is rather than breaking the page
    text = number_format(value, decimal_pos=2, use_l10n=True, force_grouping=True)
    return f"{text}{NBSP}{currency}" if currency else text
