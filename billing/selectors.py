"""Reads of the billing core."""

from decimal import Decimal

from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from billing.models import Client, LedgerEntry, Payment, Service, TariffPlan

_MONEY = DecimalField(max_digits=12, decimal_places=2)
_ZERO = Value(Decimal("0"), output_field=_MONEY)


def client_balance(*, client: Client) -> Decimal:
    # To the cent: SQLite sums decimals without their scale (650, 649.5).
    return client.ledger_entries.aggregate(balance=Coalesce(Sum("amount"), _ZERO))["balance"].quantize(Decimal("0.01"))


def client_list_with_balance() -> QuerySet[Client]:
    """Clients with their balance (`balance`) in the same query.

    A correlated subquery rather than a join: a page of clients sums only its own clients' entries.
    """
    sums = LedgerEntry.objects.filter(client=OuterRef("pk")).order_by().values("client").annotate(total=Sum("amount")).values("total")
    return Client.objects.annotate(balance=Coalesce(Subquery(sums, output_field=_MONEY), _ZERO))


def client_of(user) -> Client:
    """The paying account a logged-in user acts for; 404 for a user without one (e.g. staff only)."""
    client = user.clients.order_by("pk").first() if user.is_authenticated else None
    if client is None:
        raise Http404("no client account")
    return client


def shop_tariffs() -> QuerySet[TariffPlan]:
    """What the shop-window offers, with prices and resources loaded in two more queries."""
    return (
        TariffPlan.objects.filter(is_visible=True, is_enabled=True)
        .select_related("processing_module")
        .prefetch_related("prices", "resources")
        .order_by("product_type", "ordering", "pk")
    )


def client_services(*, client: Client) -> QuerySet[Service]:
    return client.services.select_related("tariff__processing_module").prefetch_related("resources").order_by("-pk")


def client_service(*, client: Client, service_id: int) -> Service:
    """One of the client's own services; another client's id is a 404."""
    try:
        return client_services(client=client).get(pk=service_id)
    except Service.DoesNotExist:
        raise Http404("no such service") from None


def client_payment(*, client: Client, payment_id: int) -> Payment:
    try:
        return client.payments.get(pk=payment_id)
    except Payment.DoesNotExist:
        raise Http404("no such payment") from None
