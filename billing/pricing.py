"""What an order costs. The shop's live total (static/js/order.js) mirrors this formula in cents.

price per period = the tariff's price for the period
                 + for each resource: units above the included amount * unit price * months
first payment    = price per period + the tariff's setup fee
"""

from dataclasses import dataclass
from decimal import Decimal

from billing.models import TariffPlan


@dataclass(frozen=True)
class QuoteLine:
    kind: str
    label: str
    extra_units: int
    amount: Decimal


@dataclass(frozen=True)
class Quote:
    period: int
    tariff_price: Decimal
    lines: tuple[QuoteLine, ...]
    setup_fee: Decimal

    @property
    def price(self) -> Decimal:
        """What each period costs."""
        return self.tariff_price + sum((line.amount for line in self.lines), Decimal("0"))

    @property
    def total(self) -> Decimal:
        """What the first payment costs."""
        return self.price + self.setup_fee


def tariff_quote(*, tariff: TariffPlan, tariff_price: Decimal, period: int, quantities: dict[str, int]) -> Quote:
    """The price of `tariff` for `period` months with the resource `quantities` (missing = included).

    `quantities` are assumed valid (see billing.services.order_place); `tariff_price` is the
    tariff's price for the period.
    """
    lines = []
    for resource in tariff.resources.all():
        extra = max(0, quantities.get(resource.kind, resource.included) - resource.included)
        if extra:
            lines.append(QuoteLine(resource.kind, resource.get_kind_display(), extra, extra * resource.unit_price * period))
    return Quote(period=period, tariff_price=tariff_price, lines=tuple(lines), setup_fee=tariff.setup_fee)
