"""Reads of the billing core."""

from decimal import Decimal

from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import Client, LedgerEntry

_MONEY = DecimalField(max_digits=12, decimal_places=2)
_ZERO = Value(Decimal("0"), output_field=_MONEY)


def client_balance(*, client: Client) -> Decimal:
    return client.ledger_entries.aggregate(balance=Coalesce(Sum("amount"), _ZERO))["balance"]


def client_list_with_balance() -> QuerySet[Client]:
    """Clients with their balance (`balance`) in the same query.

    A correlated subquery rather than a join: a page of clients sums only its own clients' entries.
    """
    sums = LedgerEntry.objects.filter(client=OuterRef("pk")).order_by().values("client").annotate(total=Sum("amount")).values("total")
    return Client.objects.annotate(balance=Coalesce(Subquery(sums, output_field=_MONEY), _ZERO))
