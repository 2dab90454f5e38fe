"""Reads of the billing core."""

from decimal import Decimal

from django.db.models import DecimalField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from billing.models import Client

_ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=12, decimal_places=2))


def client_balance(*, client: Client) -> Decimal:
    return client.ledger_entries.aggregate(balance=Coalesce(Sum("amount"), _ZERO))["balance"]


def client_list_with_balance() -> QuerySet[Client]:
    """Clients with their balance computed in the same query (`balance`)."""
    return Client.objects.annotate(balance=Coalesce(Sum("ledger_entries__amount"), _ZERO))
