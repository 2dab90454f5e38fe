"""Reads of the billing core."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from ipaddress import ip_address
from urllib.parse import urlsplit

from django.db.models import DecimalField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy

from billing.choices import DocumentKind, ProductType, ServiceStatus, SuspendReason
from billing.cycle_rules import CycleRules, day_start, local_date, today
from billing.documents import Line, document_draft
from billing.models import Client, LedgerEntry, Payment, Service, TariffPlan
from billing.periods import period_end_after
from billing.stored_text import StoredText
from provisioning.choices import PENDING_OPERATION_STATUSES

_MONEY = DecimalField(max_digits=12, decimal_places=2)
_ZERO = Value(Decimal("0"), output_field=_MONEY)


def charged_for(*, client: Client, price: Decimal, quantity: int = 1) -> Decimal:
    """What billing `price` takes from the balance: its invoice's total, the tax added when prices exclude it."""
    return document_draft(client=client, kind=DocumentKind.INVOICE, lines=[Line(StoredText(), price, quantity=quantity)]).gross


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
    """What the shop-window offers (not the tariffs of a disabled module), with prices and resources in two more queries."""
    return (
        TariffPlan.objects.filter(is_visible=True, is_enabled=True, processing_module__is_enabled=True)
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


def service_pending_action(*, service: Service) -> str | None:
    """The panel action queued or running for a service, if any (a database constraint allows one)."""
    return service.operations.filter(status__in=PENDING_OPERATION_STATUSES).values_list("action", flat=True).first()


def client_unpaid_services(*, client: Client) -> QuerySet[Service]:
    """The client's orders that wait for their first payment."""
    return client_services(client=client).filter(status=ServiceStatus.ORDERED)


def client_unpaid_service(*, client: Client, service_id) -> Service | None:
    """An order of this client that waits for payment, from an id taken from an address; None for anything else."""
    service_id = str(service_id or "")
    # isdigit() alone also takes "²", which int() refuses.
    if not (service_id.isascii() and service_id.isdigit()) or len(service_id) > 18:
        return None
    return client_unpaid_services(client=client).filter(pk=int(service_id)).first()


def service_ip_addresses(*, service: Service) -> list[str]:
    """The dedicated addresses a service holds now, in numeric order (databases sort them as text or as numbers)."""
    return sorted(service.ip_assignments.filter(released_at__isnull=True).values_list("address", flat=True), key=ip_address)


@dataclass(frozen=True)
class FtpAccess:
    """How a client connects to its FTP storage."""

    host: str
    port: int
    login: str
    protocol: str  # translated when shown


# ISPmanager's FTP server (ProFTPD or Pure-FTPd) listens on the standard port of the panel's own host
# and offers TLS on the same connection (explicit FTPS, AUTH TLS); storage accounts have no shell, so no SFTP.
FTP_PORT = 21
FTP_PROTOCOL = gettext_lazy("FTP or FTPS (explicit TLS)")


def service_ftp_access(*, service: Service) -> FtpAccess | None:
    """Connection details of an FTP storage account that exists in the panel; None for anything else."""
    if service.tariff.product_type != ProductType.STORAGE or not service.panel_username or service.status == ServiceStatus.DELETED:
        return None
    host = urlsplit(service.tariff.processing_module.url).hostname or ""
    return FtpAccess(host=host, port=FTP_PORT, login=service.panel_username, protocol=FTP_PROTOCOL)


@dataclass(frozen=True)
class BillingSummary:
    """Where a service stands in its billing cycle, as the client area and the admin show it."""

    paid_until: datetime | None
    next_charge_on: date | None  # auto-renew on: the first date the daily run charges the balance
    next_charge_amount: Decimal | None
    overdue: bool  # past its expiry, unpaid, not suspended yet
    suspended_for_nonpayment: bool
    suspend_on: date | None  # overdue: when the daily run suspends it
    delete_on: date | None  # suspended for non-payment: when the daily run deletes it


def service_billing_summary(*, service: Service, rules: CycleRules | None = None) -> BillingSummary:
    rules = rules or CycleRules.from_settings()
    expiry = service.expires_at
    running = service.status in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED) and expiry is not None
    for_nonpayment = service.status == ServiceStatus.SUSPENDED and service.suspend_reason == SuspendReason.NONPAYMENT
    renews = running and service.auto_renew and (service.status == ServiceStatus.ACTIVE or for_nonpayment)
    overdue = running and service.status == ServiceStatus.ACTIVE and expiry <= timezone.now()
    return BillingSummary(
        paid_until=expiry,
        next_charge_on=max(rules.renew_on(local_date(expiry)), today()) if renews else None,
        next_charge_amount=charged_for(client=service.client, price=service.price) if renews else None,
        overdue=overdue,
        suspended_for_nonpayment=for_nonpayment,
        suspend_on=rules.suspend_on(local_date(expiry)) if overdue else None,
        delete_on=rules.delete_on(local_date(service.suspended_at)) if for_nonpayment and service.suspended_at else None,
    )


@dataclass(frozen=True)
class RenewalQuote:
    periods: int
    price: Decimal  # what the invoice's line bills: the price per period times the periods
    amount: Decimal  # charged at once: the invoice's total
    until: datetime  # the new paid-until


def service_renewal_quote(*, service: Service, periods: int) -> RenewalQuote:
    """What renewing a started service for `periods` more periods costs now and until when it is then paid (as service_renew does it)."""
    until = period_end_after(anchor=service.period_anchor, expires_at=service.expires_at, months=service.period * periods)
    price = service.price * periods
    return RenewalQuote(periods=periods, price=price, amount=charged_for(client=service.client, price=price, quantity=periods), until=until)


@dataclass(frozen=True)
class AmountDue:
    due: Decimal  # what auto-renew charges in the coming days, overdue services included
    missing: Decimal  # what the balance lacks for it: the amount to top up (0 when covered)


def client_amount_due(*, client: Client, days: int = 7) -> AmountDue:
    """What the client's services renewing from the balance cost up to `days` days ahead, and what the balance lacks."""
    renewing = Q(status=ServiceStatus.ACTIVE) | Q(status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT)
    # Each renewal is an invoice of its own, its tax rounded on its own.
    prices = client.services.filter(renewing, auto_renew=True, expires_at__lt=day_start(today() + timedelta(days=days + 1)))
    due = sum((charged_for(client=client, price=price) for price in prices.values_list("price", flat=True)), Decimal("0.00"))
    return AmountDue(due=due, missing=max(Decimal("0.00"), due - client_balance(client=client)))
