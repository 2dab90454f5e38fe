"""Review of issue 11 (service changes, documents, profile): each test shows one finding and fails on the code it was written against."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core import checks
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.changes import service_change, service_change_quote
from billing.choices import DocumentKind, LedgerEntryKind, ResourceKind, ServiceStatus
from billing.models import Document, DocumentImmutable, DocumentLine, LedgerEntry, TariffPrice
from billing.refunds import invoice_refund, invoice_refundable
from billing.selectors import client_amount_due, service_renewal_quote
from billing.services import InsufficientFunds, ledger_entry_add, service_renew
from tests.billing.test_client_pages import PASSWORD
from tests.factories import (
    ClientFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    ServiceResourceFactory,
    StaffUserFactory,
    TariffPlanFactory,
    TariffResourceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MAY_16 = datetime(2026, 5, 16, 12, 0, tzinfo=UTC)
EXPIRES = datetime(2026, 5, 31, 10, 0, tzinfo=UTC)  # S8's current period: 2026-04-30 - 2026-05-31, 31 days


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"
    settings.BILLING_TAX_RATE = "0"
    settings.BILLING_PRICES_INCLUDE_TAX = True


@pytest.fixture
def tax_on_top(settings):
    settings.BILLING_TAX_RATE = "20"
    settings.BILLING_PRICES_INCLUDE_TAX = False


def plan(module, name, price):
    tariff = TariffPlanFactory(name=name, processing_module=module, monthly_price=Decimal(price))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=1, unit_price=Decimal("1.50"), max_quantity=10)
    return tariff


@pytest.fixture
def plans(db):
    module = ProcessingModuleFactory()
    return {name: plan(module, name, price) for name, price in (("T10", "10.00"), ("T20", "20.00"), ("T30", "30.00"))}


def active(tariff, *, client=None, balance="100.00", anchor=datetime(2026, 1, 31, 10, tzinfo=UTC), expires=EXPIRES):
    service = ServiceFactory(
        tariff=tariff,
        client=client or ClientFactory(currency=tariff.currency),
        status=ServiceStatus.ACTIVE,
        price=tariff.prices.get().price,
        period_anchor=anchor,
        expires_at=expires,
        panel_username="user8",
    )
    ServiceResourceFactory(service=service, kind=ResourceKind.DATABASES, quantity=1)
    if Decimal(balance):
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    return service


def credited(service):
    return list(LedgerEntry.objects.filter(client=service.client, kind=LedgerEntryKind.REFUND).values_list("amount", flat=True))


def charged(service):
    return [
        -amount
        for amount in LedgerEntry.objects.filter(client=service.client, kind=LedgerEntryKind.CHARGE).values_list("amount", flat=True)
    ]


# --- Money -------------------------------------------------------------------------------------------------


def test_with_tax_on_top_the_preview_shows_what_the_change_then_charges(plans, customer, logged_in, tax_on_top):
    service = active(plans["T10"], client=customer)
    with time_machine.travel(MAY_16, tick=False):
        preview = logged_in.get(reverse("service_change_preview", args=[service.pk]), {"tariff": plans["T20"].pk}).json()
        service_change(service=service, tariff=plans["T20"])

    assert charged(service) == [Decimal("5.81")]  # 4.84 + 20% tax, the invoice's total
    assert preview["charge"] == "5.81"


def test_with_tax_on_top_the_renewal_quote_and_the_amount_due_include_the_tax(plans, tax_on_top):
    service = active(plans["T10"], balance="10.00", expires=datetime(2026, 5, 20, 10, tzinfo=UTC))
    service.auto_renew = True
    service.save()
    with time_machine.travel(datetime(2026, 5, 18, 9, tzinfo=UTC), tick=False):
        quote, due = service_renewal_quote(service=service, periods=1), client_amount_due(client=service.client)
        with pytest.raises(InsufficientFunds):
            service_renew(service=service)  # the invoice: 10.00 + 2.00 tax, and 10.00 on the balance

    assert quote.amount == Decimal("12.00")
    assert (due.due, due.missing) == (Decimal("12.00"), Decimal("2.00"))


def test_a_downgrade_credits_from_what_the_service_was_paid_not_from_a_raised_tariff_price(plans):
    service = active(plans["T20"])  # sold and renewed at 20.00
    TariffPrice.objects.filter(tariff=plans["T20"]).update(price=Decimal("40.00"))  # new orders cost 40.00 from now on

    with time_machine.travel(MAY_16, tick=False):
        service_change(service=service, tariff=plans["T10"])

    assert credited(service) == [Decimal("4.84")]  # (20.00 - 10.00) x 15/31


def test_a_change_with_periods_paid_ahead_never_moves_more_than_the_difference_over_the_paid_time(plans):
    december = datetime(2025, 12, 1, 10, tzinfo=UTC)
    service = active(plans["T20"], anchor=december, expires=datetime(2026, 1, 1, 10, tzinfo=UTC))
    with time_machine.travel(datetime(2025, 12, 1, 12, tzinfo=UTC), tick=False):
        service_renew(service=service, periods=2)  # paid until 2026-03-01
        service.refresh_from_db()
        quote = service_change_quote(service=service, tariff=plans["T10"])

    # Day-exact: December whole (10.00) and the two months paid ahead (2 x 10.00).
    assert Decimal("10.00") <= -quote.amount <= Decimal("30.00")


def test_a_downgrade_credit_counts_against_the_invoice_of_the_period_it_corrects(plans):
    service = active(plans["T20"], expires=datetime(2026, 4, 30, 10, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 4, 30, 9, tzinfo=UTC), tick=False):
        service_renew(service=service)  # INV: 20.00 for 2026-04-30 - 2026-05-31
    renewal = Document.objects.get(kind=DocumentKind.INVOICE, service=service)
    with time_machine.travel(datetime(2026, 4, 30, 12, tzinfo=UTC), tick=False):
        service.refresh_from_db()
        service_change(service=service, tariff=plans["T10"])  # 10.00 back: the whole period at T10
    assert credited(service) == [Decimal("10.00")]

    note = Document.objects.get(kind=DocumentKind.CREDIT_NOTE, service=service)
    assert note.corrects == renewal
    assert invoice_refundable(renewal) == Decimal("10.00")
    with pytest.raises(ValidationError, match="left to refund"):
        invoice_refund(invoice=renewal, amount=Decimal("20.00"), by=StaffUserFactory(), idempotency_key="again")


def test_a_credit_note_reverses_the_tax_of_its_invoice_after_the_client_became_exempt(settings):
    settings.BILLING_TAX_RATE = "20"
    client = ClientFactory()
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.00"))
    invoice = ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("12.00")).document
    assert (invoice.net, invoice.tax) == (Decimal("10.00"), Decimal("2.00"))
    client.tax_exempt, client.tax_exempt_note = True, "Reverse charge"
    client.save()

    note = invoice_refund(invoice=invoice, amount=Decimal("12.00"), by=StaffUserFactory(), idempotency_key="k")

    assert (note.net, note.tax, note.gross) == (Decimal("-10.00"), Decimal("-2.00"), Decimal("-12.00"))


# --- Numbering ---------------------------------------------------------------------------------------------


def test_a_number_format_that_cannot_give_distinct_numbers_is_refused_at_start_or_still_numbers_apart(settings):
    settings.DOCUMENT_NUMBER_FORMAT = "{series}-{number:05d}"
    refused = [message for message in checks.run_checks() if "DOCUMENT_NUMBER_FORMAT" in f"{message.msg} {message.hint}"]
    if refused:
        return
    client = ClientFactory()
    with time_machine.travel(datetime(2026, 12, 31, 12, tzinfo=UTC), tick=False):
        ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"))
    with time_machine.travel(datetime(2027, 1, 1, 12, tzinfo=UTC), tick=False):
        ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"))
    assert client.documents.values("number").distinct().count() == 2


# --- Immutability ------------------------------------------------------------------------------------------


@pytest.fixture
def invoice():
    client = ClientFactory()
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("50.00"))
    return ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("30.05"), reference="Extra disk").document


def test_the_lines_of_an_issued_document_cannot_be_changed_or_deleted(invoice):
    line = invoice.lines.get()
    line.gross = Decimal("0.01")
    with pytest.raises(DocumentImmutable):
        line.save()
    with pytest.raises(DocumentImmutable):
        DocumentLine.objects.get(pk=line.pk).delete()
    assert DocumentLine.objects.get(pk=line.pk).gross == Decimal("30.05")


def test_an_issued_document_cannot_be_overwritten_through_a_new_instance_or_a_queryset(invoice):
    fields = {field.attname: getattr(invoice, field.attname) for field in Document._meta.concrete_fields}
    with pytest.raises(DocumentImmutable):
        Document(**{**fields, "gross": Decimal("0.01")}).save()
    with pytest.raises(Exception):  # noqa: B017 - a manager's refusal or a database trigger's error
        Document.objects.filter(pk=invoice.pk).update(gross=Decimal("0.02"))
    assert Document.objects.get(pk=invoice.pk).gross == Decimal("30.05")


# --- Client area and admin ---------------------------------------------------------------------------------


def test_the_billing_address_is_bounded_so_that_a_pdf_renders_quickly(logged_in, customer):
    address = "a\n" * 4000  # 8 KB
    details = {"form": "details", "details-name": "Ann", "details-email": "ann@example.com", "details-address": address}
    assert logged_in.post(reverse("profile"), details).status_code in (200, 302)
    customer.refresh_from_db()
    assert customer.address.count("\n") < 100  # refused, or kept to a few lines


def test_staff_without_the_ledger_permission_cannot_credit_money_by_a_downgrade(client, plans):
    service = active(plans["T20"])
    clerk = StaffUserFactory(username="clerk@example.com", is_superuser=False)
    clerk.user_permissions.add(*Permission.objects.filter(codename__in=["view_service", "change_service"]))
    client.force_login(clerk)
    url = reverse("admin:billing_service_change_plan", args=[service.pk])

    with time_machine.travel(MAY_16, tick=False):
        client.post(url, {"tariff": plans["T10"].pk, "price": "20.00", "confirm": "yes"})

    assert credited(service) == []


@pytest.fixture
def user(db):
    return UserFactory(username="ann@example.com")


@pytest.fixture
def customer(user):
    customer = ClientFactory(name="Ann's Bakery", email=user.email)
    customer.users.add(user)
    return customer


@pytest.fixture
def logged_in(client, user, customer):
    client.force_login(user)
    assert user.check_password(PASSWORD)
    return client
