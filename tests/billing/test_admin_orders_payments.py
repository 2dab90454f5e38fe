"""Orders and payments as staff handle them in the admin: placing an order for a client, paying it, confirming top-ups."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.choices import BillingPeriod, Currency, LedgerEntryKind, PanelAction, PaymentStatus, ResourceKind, ServiceStatus
from billing.models import LedgerEntry, Payment, Service, ServiceResource
from billing.payments import payment_confirm, payment_start
from billing.pricing import tariff_quote
from billing.selectors import client_balance
from billing.services import ledger_entry_add, order_place
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.factories import (
    ClientFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffPriceFactory,
    TariffResourceFactory,
)

SERVICE_ADD_URL = reverse("admin:billing_service_add")
SERVICES = "admin:billing_service_changelist"
PAYMENTS = "admin:billing_payment_changelist"


def post_action(client, changelist, action, *objects):
    response = client.post(reverse(changelist), {"action": action, "_selected_action": [obj.pk for obj in objects]}, follow=True)
    assert response.status_code == 200
    return response


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def action_names(response):
    return [name for name, _label in response.context["action_form"].fields["action"].choices if name]


def form_errors(response):
    """Every error of the admin form, by field (None for the form as a whole)."""
    return {None if field == "__all__" else field: list(errors) for field, errors in response.context["adminform"].form.errors.items()}


@pytest.fixture
def customer(db):
    return ClientFactory(name="Acme")


@pytest.fixture
def tariff(db):
    """300.00 a month or 850.00 a quarter, a 50.00 setup fee, 10 databases included; up to 4 dedicated IPs at 150.00."""
    tariff = TariffPlanFactory(
        name="Business", setup_fee=Decimal("50.00"), allow_dedicated_ip=True, processing_module=ProcessingModuleFactory(edition="business")
    )
    TariffPriceFactory(tariff=tariff, period=BillingPeriod.QUARTER, price=Decimal("850.00"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DEDICATED_IPV4, included=0, unit_price=Decimal("150.00"), max_quantity=4)
    return tariff


def order_data(customer, tariff, /, **overrides):
    return {
        "client": customer.pk,
        "tariff": tariff.pk,
        "period": BillingPeriod.QUARTER,
        "domain": "Acme.Example.COM",
        "dedicated_ips": "2",
        "_save": "Save",
        **overrides,
    }


def top_up(customer, amount):
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal(amount), reference="bank transfer")


# Staff place an order


def test_staff_order_is_priced_like_the_shop_with_the_tariffs_resources(admin_client, customer, tariff):
    response = admin_client.post(SERVICE_ADD_URL, order_data(customer, tariff))

    assert response.status_code == 302
    assert response["Location"] == reverse(SERVICES)
    service = Service.objects.get()
    assert (service.client, service.tariff, service.period, service.domain) == (customer, tariff, 3, "acme.example.com")
    assert (service.status, service.paid_at, service.ordered_by) == (ServiceStatus.ORDERED, None, None)
    resources = dict(service.resources.values_list("kind", "quantity"))
    assert resources == {"databases": 10, "dedicated_ipv4": 2}
    # 850.00 for the quarter + 2 dedicated IPs * 150.00 * 3 months; the setup fee once.
    quote = tariff_quote(tariff=tariff, tariff_price=Decimal("850.00"), period=3, quantities=resources)
    assert (service.price, service.setup_fee) == (quote.price, quote.setup_fee) == (Decimal("1750.00"), Decimal("50.00"))
    same_in_the_shop = order_place(client=customer, user=None, tariff=tariff, period=3, domain="acme.example.com", dedicated_ips=2)
    assert (same_in_the_shop.price, same_in_the_shop.setup_fee) == (service.price, service.setup_fee)
    assert client_balance(client=customer) == 0
    assert not Operation.objects.exists()


def test_staff_order_without_dedicated_ips_gets_the_included_resources(admin_client, customer, tariff):
    response = admin_client.post(SERVICE_ADD_URL, order_data(customer, tariff, period=BillingPeriod.MONTH, dedicated_ips=""))

    assert response.status_code == 302
    service = Service.objects.get()
    assert (service.price, service.setup_fee) == (Decimal("300.00"), Decimal("50.00"))
    assert dict(service.resources.values_list("kind", "quantity")) == {"databases": 10, "dedicated_ipv4": 0}


def test_staff_may_order_a_tariff_hidden_from_the_shop(admin_client, customer, tariff):
    tariff.is_visible = False
    tariff.save()

    response = admin_client.post(SERVICE_ADD_URL, order_data(customer, tariff, period=BillingPeriod.MONTH, dedicated_ips="0"))

    assert response.status_code == 302
    assert Service.objects.get().tariff == tariff


def test_service_add_form_asks_only_for_what_an_order_needs(admin_client, db):
    response = admin_client.get(SERVICE_ADD_URL)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.fields) == ["client", "tariff", "period", "domain", "dedicated_ips"]
    assert 'name="price"' not in response.content.decode()
    assert 'name="status"' not in response.content.decode()


def bad_orders():
    return [
        pytest.param({"domain": ""}, "domain", "Enter the domain of the site, e.g. example.com.", id="no domain for shared hosting"),
        pytest.param({"domain": "not a domain"}, "domain", None, id="malformed domain"),
        pytest.param({"period": BillingPeriod.YEAR}, "period", "This tariff is not sold for that period.", id="period not offered"),
        pytest.param({"period": "7"}, "period", "Select a valid choice. 7 is not one of the available choices.", id="no such period"),
        pytest.param({"dedicated_ips": "5"}, None, "Dedicated IPv4 addresses: at most 4.", id="too many dedicated IPs"),
        pytest.param({"dedicated_ips": "-1"}, "dedicated_ips", "Ensure this value is greater than or equal to 0.", id="negative IPs"),
        pytest.param({"client": ""}, "client", "This field is required.", id="no client"),
        pytest.param({"tariff": "999999"}, "tariff", None, id="no such tariff"),
    ]


@pytest.mark.parametrize(("overrides", "field", "message"), bad_orders())
def test_staff_order_with_bad_input_shows_the_error_and_creates_nothing(admin_client, customer, tariff, overrides, field, message):
    response = admin_client.post(SERVICE_ADD_URL, order_data(customer, tariff, **overrides))

    assert response.status_code == 200
    errors = form_errors(response)
    assert field in errors
    if message:
        assert message in errors[field]
    assert not Service.objects.exists()
    assert not ServiceResource.objects.exists()


def test_staff_cannot_order_a_disabled_tariff(admin_client, customer, tariff):
    tariff.is_enabled = False
    tariff.save()

    response = admin_client.post(SERVICE_ADD_URL, order_data(customer, tariff))

    assert response.status_code == 200
    assert form_errors(response) == {None: ["This tariff cannot be ordered."]}
    assert not Service.objects.exists()


def test_staff_cannot_order_dedicated_ips_on_a_tariff_without_them(admin_client, customer, tariff):
    tariff.allow_dedicated_ip = False
    tariff.save()

    response = admin_client.post(SERVICE_ADD_URL, order_data(customer, tariff))

    assert response.status_code == 200
    assert form_errors(response) == {None: ["This tariff does not offer dedicated IP addresses."]}
    assert not Service.objects.exists()


def test_staff_cannot_order_a_tariff_in_another_currency_than_the_clients(admin_client, tariff):
    dollar_client = ClientFactory(currency=Currency.USD)

    response = admin_client.post(SERVICE_ADD_URL, order_data(dollar_client, tariff))

    assert response.status_code == 200
    assert form_errors(response) == {"tariff": ["This tariff is priced in RUB and your account in USD."]}
    assert not Service.objects.exists()


# Service actions: pay


@pytest.fixture
def ordered(customer, tariff):
    return ServiceFactory(client=customer, tariff=tariff, price=Decimal("300.00"), setup_fee=Decimal("50.00"), domain="acme.example.com")


def test_pay_from_balance_charges_the_first_payment_and_queues_the_open(admin_client, staff_user, customer, ordered):
    top_up(customer, "1000.00")

    response = post_action(admin_client, SERVICES, "pay_from_balance", ordered)

    assert messages_of(response) == ["1 service paid."]
    assert client_balance(client=customer) == Decimal("650.00")
    charge = customer.ledger_entries.get(kind=LedgerEntryKind.CHARGE)
    assert (charge.amount, charge.created_by, charge.reference) == (Decimal("-350.00"), staff_user, f"Service #{ordered.pk}, first payment")
    ordered.refresh_from_db()
    assert ordered.status == ServiceStatus.PROCESSING
    assert ordered.paid_at is not None
    operation = Operation.objects.get(service=ordered)
    assert (operation.action, operation.status, operation.requested_by) == (PanelAction.OPEN, OperationStatus.QUEUED, staff_user)


def test_pay_from_balance_with_too_little_money_names_the_service_and_changes_nothing(admin_client, customer, tariff, ordered):
    top_up(customer, "100.00")
    other = ClientFactory(name="Rich")
    top_up(other, "1000.00")
    payable = ServiceFactory(client=other, tariff=tariff, price=Decimal("300.00"), setup_fee=Decimal("0.00"))

    response = post_action(admin_client, SERVICES, "pay_from_balance", ordered, payable)

    assert sorted(messages_of(response)) == sorted(
        [f"{ordered}: Not enough money on the balance: 250.00\xa0RUB more is needed.", "1 service paid."]
    )
    assert client_balance(client=customer) == Decimal("100.00")
    ordered.refresh_from_db()
    assert (ordered.status, ordered.paid_at) == (ServiceStatus.ORDERED, None)
    assert list(Operation.objects.values_list("service", "action")) == [(payable.pk, PanelAction.OPEN)]


def test_pay_from_balance_twice_charges_once(admin_client, customer, ordered):
    top_up(customer, "1000.00")

    post_action(admin_client, SERVICES, "pay_from_balance", ordered)
    post_action(admin_client, SERVICES, "pay_from_balance", ordered)

    assert client_balance(client=customer) == Decimal("650.00")
    assert Operation.objects.filter(service=ordered).count() == 1


def test_service_changelist_offers_no_bulk_delete_and_a_service_cannot_be_deleted(admin_client, ordered):
    response = admin_client.get(reverse(SERVICES))

    names = action_names(response)
    assert "delete_selected" not in names
    assert {"pay_from_balance", "mark_paid"} <= set(names)
    assert admin_client.post(reverse("admin:billing_service_delete", args=[ordered.pk]), {"post": "yes"}).status_code == 403
    refused = admin_client.post(reverse(SERVICES), {"action": "delete_selected", "_selected_action": [ordered.pk], "post": "yes"})
    assert refused.status_code in (200, 302)
    assert Service.objects.filter(pk=ordered.pk).exists()


# Payments


@pytest.fixture
def transfer(customer):
    payment, _start = payment_start(client=customer, gateway_code="manual", amount="500.00")
    return payment


def test_confirming_a_bank_transfer_credits_the_balance_once(admin_client, staff_user, customer, transfer):
    first = post_action(admin_client, PAYMENTS, "confirm", transfer)
    second = post_action(admin_client, PAYMENTS, "confirm", transfer)

    assert messages_of(first) == ["1 payment confirmed."]
    assert messages_of(second) == [f"{transfer}: Payment {transfer.reference} is already confirmed: nothing was credited again."]
    transfer.refresh_from_db()
    assert (transfer.status, transfer.confirmed_by) == (PaymentStatus.PAID, staff_user)
    assert transfer.paid_at is not None
    (entry,) = customer.ledger_entries.all()
    assert (entry.kind, entry.amount, entry.created_by) == (LedgerEntryKind.TOPUP, Decimal("500.00"), staff_user)
    assert entry.reference == f"Payment {transfer.reference}"


def test_cancelling_a_pending_payment_credits_nothing_and_it_cannot_be_confirmed_afterwards(admin_client, customer, transfer):
    cancelled = post_action(admin_client, PAYMENTS, "cancel", transfer)

    assert messages_of(cancelled) == ["1 payment cancelled."]
    transfer.refresh_from_db()
    assert transfer.status == PaymentStatus.CANCELLED
    confirmed = post_action(admin_client, PAYMENTS, "confirm", transfer)
    assert messages_of(confirmed) == [f"{transfer}: Payment {transfer.reference} was cancelled."]
    transfer.refresh_from_db()
    assert transfer.status == PaymentStatus.CANCELLED
    assert not LedgerEntry.objects.exists()


def test_a_paid_payment_cannot_be_cancelled(admin_client, customer, transfer):
    payment_confirm(payment=transfer)

    response = post_action(admin_client, PAYMENTS, "cancel", transfer)

    assert messages_of(response) == [f"{transfer}: Only a payment awaiting payment can be cancelled."]
    transfer.refresh_from_db()
    assert transfer.status == PaymentStatus.PAID
    assert client_balance(client=customer) == Decimal("500.00")


def test_payments_cannot_be_added_or_deleted_in_the_admin(admin_client, transfer):
    assert admin_client.get(reverse("admin:billing_payment_add")).status_code == 403
    assert admin_client.post(reverse("admin:billing_payment_add"), {"client": transfer.client_id, "amount": "1.00"}).status_code == 403
    assert admin_client.post(reverse("admin:billing_payment_delete", args=[transfer.pk]), {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse(PAYMENTS))
    assert action_names(changelist) == ["confirm", "cancel"]
    assert reverse("admin:billing_payment_add") not in changelist.content.decode()
    assert Payment.objects.count() == 1


def test_payment_change_page_is_read_only(admin_client, customer, transfer):
    url = reverse("admin:billing_payment_change", args=[transfer.pk])

    page = admin_client.get(url)
    admin_client.post(url, {"amount": "99999.00", "status": PaymentStatus.PAID, "client": ClientFactory().pk, "_save": "Save"})

    assert page.status_code == 200
    assert list(page.context["adminform"].form.fields) == []
    assert transfer.reference in page.content.decode()
    transfer.refresh_from_db()
    assert (transfer.amount, transfer.status, transfer.client) == (Decimal("500.00"), PaymentStatus.PENDING, customer)
    assert not LedgerEntry.objects.exists()
