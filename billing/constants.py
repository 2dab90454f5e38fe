"""Bounds every writer checks before it stores a number: what the columns hold, and what makes business sense."""

from decimal import Decimal

# The most of one resource a service or tariff may have. Disk and memory count MiB, so this is about
# 9.5 TiB; it keeps a runaway number from reaching the price or the panel, and stays far below what
# a PositiveIntegerField holds (2,147,483,647 on PostgreSQL).
QUANTITY_MAX = 10_000_000

# The MONEY columns (billing.models.MONEY: 12 digits, 2 of them after the point) hold less than 10^10.
# Every price, fee and ledger amount is checked against this before it is written.
MONEY_MAX = Decimal("9999999999.99")
