"""Paying for a service from the balance, and topping the balance up through payment gateways."""

import json
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.test import Client as BrowserClient
from django.urls import reverse
from django_tasks import task_backends

from billing.choices import BillingPeriod, LedgerEntryKind, PanelAction, PaymentStatus, ResourceKind, ServiceStatus
from billing.models import LedgerEntry, Payment, Service, ServiceStatusChange
from billing.payments import callback_signature, payment_callback, payment_cancel, payment_confirm, payment_start
from billing.selectors import client_balance
from billing.services import InsufficientFunds, NothingToDo, ledger_entry_add, order_place, service_client_request, service_pay
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.conftest import postgres_only, run_at_once
from tests.factories import ClientFactory, TariffPlanFactory, TariffPriceFactory, TariffResourceFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET = "tests-callback-secret"


@pytest.fixture
def queue():
    """The tasks backend (a DummyBackend in tests): what was enqueued after commit."""
    backend = task_backends["default"]
    backend.clear()
    yield backend
    backend.clear()


@pytest.fixture
def account():
    client = ClientFactory(currency="RUB")
    client.users.add(UserFactory())
    return client


@pytest.fixture
def user(account):
    return account.users.get()


@pytest.fixture
def gateways(settings):
    """Both built-in gateways on, and callbacks signed with a known secret."""
    settings.PAYMENT_GATEWAYS = ["manual", "test"]
    settings.PAYMENT_CALLBACK_SECRET = SECRET
    return settings


def top_up(client, amount):
    return ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal(amount))


def ordered(account, *, price="300.00", setup_fee="50.00"):
    """An ordered, unpaid service: `price` a month plus `setup_fee`, 10 databases included."""
    tariff = TariffPlanFactory(monthly_price=False, setup_fee=Decimal(setup_fee), currency=account.currency)
    TariffPriceFactory(tariff=tariff, period=BillingPeriod.MONTH, price=Decimal(price))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10)
    return order_place(client=account, user=account.users.first(), tariff=tariff, period=BillingPeriod.MONTH, domain="example.com")


def pending_payment(client, *, gateway="test", amount="250.00", reference="PCARD00001"):
    """A payment a card gateway has started and will call back about (or a bank transfer, with gateway="manual")."""
    return Payment.objects.create(client=client, gateway=gateway, amount=Decimal(amount), currency=client.currency, reference=reference)


def entries(client):
    return list(client.ledger_entries.order_by("pk").values_list("kind", "amount"))


# --- Paying a service from the balance -------------------------------------------------------------


def test_paying_charges_the_first_payment_once_and_queues_one_open_operation(account, user, queue, django_capture_on_commit_callbacks):
    top_up(account, "1000.00")
    service = ordered(account)

    with django_capture_on_commit_callbacks(execute=True):
        service_pay(service=service, by=user)

    charge = LedgerEntry.objects.get(kind=LedgerEntryKind.CHARGE)
    assert (charge.client, charge.amount, charge.created_by) == (account, Decimal("-350.00"), user)
    assert charge.idempotency_key == f"service-{service.pk}-first-payment"
    assert charge.reference == f"Service #{service.pk}, first payment"
    assert client_balance(client=account) == Decimal("650.00")
    service.refresh_from_db()
    assert service.paid_at is not None
    assert service.status == ServiceStatus.PROCESSING
    operation = Operation.objects.get()
    assert (operation.service, operation.action, operation.status) == (service, PanelAction.OPEN, OperationStatus.QUEUED)
    assert operation.requested_by == user
    assert [(result.args, result.task.name) for result in queue.results] == [([operation.pk], "run_operation")]
    assert list(service.status_changes.values_list("from_status", "to_status")) == [(ServiceStatus.ORDERED, ServiceStatus.PROCESSING)]


def test_paying_without_enough_money_says_what_is_missing_and_changes_nothing(account, user):
    top_up(account, "100.00")
    service = ordered(account)

    with pytest.raises(InsufficientFunds) as refused:
        service_pay(service=service, by=user)

    assert refused.value.missing == Decimal("250.00")
    assert refused.value.messages == ["Not enough money on the balance: 250.00\xa0RUB more is needed."]
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("100.00"))]
    service.refresh_from_db()
    assert (service.status, service.paid_at) == (ServiceStatus.ORDERED, None)
    assert not Operation.objects.exists()
    assert not ServiceStatusChange.objects.exists()


def test_paying_twice_charges_once_and_queues_one_operation(account, user):
    top_up(account, "1000.00")
    service = ordered(account)

    service_pay(service=service, by=user)
    paid_at = Service.objects.get(pk=service.pk).paid_at
    with pytest.raises(NothingToDo) as again:
        service_pay(service=service, by=user)

    assert again.value.messages == [f"Service #{service.pk} is already paid for: nothing was charged."]
    assert Service.objects.get(pk=service.pk).paid_at == paid_at
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("1000.00")), (LedgerEntryKind.CHARGE, Decimal("-350.00"))]
    assert Operation.objects.count() == 1


def test_a_free_tariff_is_paid_without_a_ledger_entry(account, user):
    service = ordered(account, price="0.00", setup_fee="0.00")

    service_pay(service=service, by=user)

    service.refresh_from_db()
    assert service.paid_at is not None
    assert service.status == ServiceStatus.PROCESSING
    assert not LedgerEntry.objects.exists()
    assert Operation.objects.get().action == PanelAction.OPEN


def test_paying_a_cancelled_order_is_refused_and_charges_nothing(account, user):
    top_up(account, "1000.00")
    service = ordered(account)
    service_client_request(service=service, action=PanelAction.CLOSE, user=user, confirmed=True)

    with pytest.raises(ValidationError) as refused:
        service_pay(service=service, by=user)

    assert refused.value.messages == [f"Service #{service.pk} is “Deleted”: only an ordered service can be paid for."]
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("1000.00"))]
    service.refresh_from_db()
    assert (service.status, service.paid_at) == (ServiceStatus.DELETED, None)
    assert not Operation.objects.exists()


def test_paying_gives_the_service_every_resource_of_its_tariff(account, user):
    top_up(account, "1000.00")
    service = ordered(account)
    service.resources.all().delete()  # e.g. a service staff created by hand

    service_pay(service=service, by=user)

    assert dict(service.resources.values_list("kind", "quantity")) == {ResourceKind.DATABASES: 10}


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_simultaneous_payments_of_one_service_charge_once_and_queue_one_operation(account, user):
    top_up(account, "1000.00")
    service = ordered(account)

    outcomes = run_at_once(6, lambda i: service_pay(service=service, by=user))

    assert outcomes.count(None) == 1
    assert [type(outcome) for outcome in outcomes if outcome] == [NothingToDo] * 5
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("1000.00")), (LedgerEntryKind.CHARGE, Decimal("-350.00"))]
    operation = Operation.objects.get()
    assert (operation.service, operation.action, operation.status) == (service, PanelAction.OPEN, OperationStatus.QUEUED)
    service.refresh_from_db()
    assert service.status == ServiceStatus.PROCESSING


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_simultaneous_confirmations_of_different_payments_all_land(account):
    payments = [
        pending_payment(account, gateway="manual", amount="10.00", reference="PFIRST0001"),
        pending_payment(account, gateway="manual", amount="20.00", reference="PSECOND001"),
    ]

    outcomes = run_at_once(2, lambda i: payment_confirm(payment=payments[i]))

    assert outcomes == [None, None]
    assert sorted(amount for _kind, amount in entries(account)) == [Decimal("10.00"), Decimal("20.00")]
    assert client_balance(client=account) == Decimal("30.00")
    assert set(Payment.objects.values_list("status", flat=True)) == {PaymentStatus.PAID}


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_one_payment_confirmed_by_several_threads_at_once_credits_once(account):
    payment = pending_payment(account, gateway="manual", amount="75.00")

    outcomes = run_at_once(6, lambda i: payment_confirm(payment=payment))

    assert outcomes.count(None) == 1
    assert [type(outcome) for outcome in outcomes if outcome] == [NothingToDo] * 5
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("75.00"))]
    assert Payment.objects.get().status == PaymentStatus.PAID


# --- Starting a top-up --------------------------------------------------------------------------------


def test_a_bank_transfer_waits_with_instructions_that_carry_the_reference_and_the_amount(account, user, settings):
    settings.BANK_TRANSFER_DETAILS = "Hosting LLC, account 40702810999999999999, Test Bank"

    payment, start = payment_start(client=account, gateway_code="manual", amount="500", by=user)

    payment.refresh_from_db()
    assert (payment.status, payment.gateway, payment.amount, payment.currency) == (
        PaymentStatus.PENDING,
        "manual",
        Decimal("500.00"),
        "RUB",
    )
    assert (payment.client, payment.created_by, payment.paid_at) == (account, user, None)
    assert re.fullmatch(r"P[0-9A-F]{10}", payment.reference)
    assert payment.reference in start.instructions
    assert "500.00\xa0RUB" in start.instructions
    assert "Hosting LLC, account 40702810999999999999, Test Bank" in start.instructions
    assert not LedgerEntry.objects.exists()


def test_every_payment_gets_its_own_reference(account):
    references = {payment_start(client=account, gateway_code="manual", amount="10")[0].reference for _ in range(20)}

    assert len(references) == 20


def test_the_demo_gateway_pays_at_once_with_one_top_up(account, user, gateways):
    payment, start = payment_start(client=account, gateway_code="test", amount=Decimal("250.00"), by=user)

    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PAID
    assert payment.paid_at is not None
    assert payment.external_id == f"test-{payment.reference}"
    assert start.instructions == "Test payment received."
    entry = LedgerEntry.objects.get()
    assert (entry.kind, entry.amount, entry.client) == (LedgerEntryKind.TOPUP, Decimal("250.00"), account)
    assert entry.idempotency_key == f"payment-{payment.pk}"
    assert entry.reference == f"Payment {payment.reference}"


def test_the_demo_gateway_is_refused_where_it_is_not_enabled(account, settings):
    settings.PAYMENT_GATEWAYS = ["manual"]  # the production default

    with pytest.raises(ValidationError) as refused:
        payment_start(client=account, gateway_code="test", amount="100")

    assert refused.value.message_dict == {"gateway": ["Choose one of the payment methods offered."]}
    assert not Payment.objects.exists()
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("gateway", ["paypal", "", "MANUAL"])
def test_a_payment_method_not_offered_is_refused_and_creates_nothing(account, gateways, gateway):
    with pytest.raises(ValidationError) as refused:
        payment_start(client=account, gateway_code=gateway, amount="100")

    assert refused.value.message_dict == {"gateway": ["Choose one of the payment methods offered."]}
    assert not Payment.objects.exists()
    assert not LedgerEntry.objects.exists()


RANGE = "Enter an amount from 1.00 to 1000000.00."
NOT_A_NUMBER = "Enter an amount such as 500.00."


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (0, RANGE),
        ("0.00", RANGE),
        ("0.004", RANGE),
        ("0.99", RANGE),
        (-5, RANGE),
        ("-5", RANGE),
        ("1000000.01", RANGE),
        (1_000_001, RANGE),
        ("1e30", NOT_A_NUMBER),
        ("abc", NOT_A_NUMBER),
        ("", NOT_A_NUMBER),
        ("5,00", NOT_A_NUMBER),
        (None, NOT_A_NUMBER),
        ("Infinity", NOT_A_NUMBER),
        ("NaN", NOT_A_NUMBER),
    ],
)
def test_an_amount_that_is_not_a_sensible_top_up_is_refused_and_creates_nothing(account, gateways, amount, message):
    with pytest.raises(ValidationError) as refused:
        payment_start(client=account, gateway_code="test", amount=amount)

    assert refused.value.message_dict == {"amount": [message]}
    assert not Payment.objects.exists()
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(("amount", "stored"), [("1", Decimal("1.00")), ("1000000.00", Decimal("1000000.00")), (12.5, Decimal("12.50"))])
def test_the_smallest_and_largest_top_ups_are_accepted(account, amount, stored):
    payment, _start = payment_start(client=account, gateway_code="manual", amount=amount)

    assert Payment.objects.get(pk=payment.pk).amount == stored


# --- Confirming and cancelling ---------------------------------------------------------------------------


def test_confirming_a_payment_twice_credits_once(account):
    payment, _start = payment_start(client=account, gateway_code="manual", amount="500")
    staff = UserFactory(is_staff=True)

    payment_confirm(payment=payment, by=staff, external_id="bank-1")
    with pytest.raises(NothingToDo) as again:
        payment_confirm(payment=payment, by=staff, external_id="bank-2")

    assert again.value.messages == [f"Payment {payment.reference} is already confirmed: nothing was credited again."]

    payment.refresh_from_db()
    assert (payment.status, payment.confirmed_by, payment.external_id) == (PaymentStatus.PAID, staff, "bank-1")
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("500.00"))]


def test_a_cancelled_payment_cannot_be_confirmed(account):
    payment, _start = payment_start(client=account, gateway_code="manual", amount="500")
    payment_cancel(payment=payment)

    with pytest.raises(ValidationError) as refused:
        payment_confirm(payment=payment)

    assert refused.value.messages == [f"Payment {payment.reference} was cancelled."]
    payment.refresh_from_db()
    assert (payment.status, payment.paid_at) == (PaymentStatus.CANCELLED, None)
    assert not LedgerEntry.objects.exists()


def test_a_paid_payment_cannot_be_cancelled(account):
    payment, _start = payment_start(client=account, gateway_code="manual", amount="500")
    payment_confirm(payment=payment)

    with pytest.raises(ValidationError) as refused:
        payment_cancel(payment=payment)

    assert refused.value.messages == ["Only a payment awaiting payment can be cancelled."]
    assert Payment.objects.get().status == PaymentStatus.PAID
    assert client_balance(client=account) == Decimal("500.00")


def test_a_pending_payment_can_be_cancelled(account):
    payment, _start = payment_start(client=account, gateway_code="manual", amount="500")

    payment_cancel(payment=payment)

    assert Payment.objects.get().status == PaymentStatus.CANCELLED
    assert not LedgerEntry.objects.exists()


# --- Gateway callbacks ------------------------------------------------------------------------------


def callback_body(reference, status="paid", external_id="gw-1"):
    return json.dumps({"reference": reference, "status": status, "id": external_id}).encode()


def deliver(body, *, gateway="test", signature=None):
    headers = {"X-Signature": callback_signature(body) if signature is None else signature}
    return payment_callback(gateway_code=gateway, body=body, headers=headers)


def test_a_genuine_callback_credits_once_even_when_delivered_twice(account, gateways):
    payment = pending_payment(account)
    body = callback_body(payment.reference, external_id="gw-42")

    deliver(body)
    deliver(body)

    payment.refresh_from_db()
    assert (payment.status, payment.external_id) == (PaymentStatus.PAID, "gw-42")
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("250.00"))]


@pytest.mark.parametrize(
    "signature",
    [
        "0" * 64,
        "",
        pytest.param("other-body", id="signature-of-another-body"),
        pytest.param("other-secret", id="signed-with-another-secret"),
    ],
)
def test_a_callback_with_a_bad_signature_is_refused_and_credits_nothing(account, gateways, signature):
    payment = pending_payment(account)
    body = callback_body(payment.reference)
    if signature == "other-body":
        signature = callback_signature(callback_body(payment.reference, status="failed"))
    elif signature == "other-secret":
        gateways.PAYMENT_CALLBACK_SECRET = "someone-elses-secret"
        signature = callback_signature(body)
        gateways.PAYMENT_CALLBACK_SECRET = SECRET

    with pytest.raises(ValidationError) as refused:
        deliver(body, signature=signature)

    assert refused.value.messages == ["The callback's signature does not match."]
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()


def test_a_callback_without_a_signature_header_is_refused(account, gateways):
    payment = pending_payment(account)

    with pytest.raises(ValidationError, match="signature does not match"):
        payment_callback(gateway_code="test", body=callback_body(payment.reference), headers={})

    assert not LedgerEntry.objects.exists()


def test_a_callback_for_an_unknown_reference_is_refused(account, gateways):
    pending_payment(account)

    with pytest.raises(ValidationError) as refused:
        deliver(callback_body("P-NOBODY"))

    assert refused.value.messages == ["Unknown payment reference."]
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()


def test_a_callback_cannot_pay_a_payment_of_another_gateway(account, gateways):
    bank_transfer, _start = payment_start(client=account, gateway_code="manual", amount="500")

    with pytest.raises(ValidationError) as refused:
        deliver(callback_body(bank_transfer.reference))

    assert refused.value.messages == ["Unknown payment reference."]
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("status", ["failed", "pending", "PAID", ""])
def test_a_callback_that_does_not_say_paid_leaves_the_payment_pending(account, gateways, status):
    payment = pending_payment(account)

    returned = deliver(callback_body(payment.reference, status=status))

    assert returned.pk == payment.pk
    payment.refresh_from_db()
    assert (payment.status, payment.paid_at) == (PaymentStatus.PENDING, None)
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    ("gateway", "message"),
    [("paypal", "Unknown payment method."), ("manual", "This payment method does not call back.")],
)
def test_a_callback_of_a_gateway_that_does_not_call_back_is_refused(account, gateways, gateway, message):
    payment = pending_payment(account)

    with pytest.raises(ValidationError) as refused:
        deliver(callback_body(payment.reference), gateway=gateway)

    assert refused.value.messages == [message]
    assert not LedgerEntry.objects.exists()


def test_a_callback_of_a_gateway_that_is_not_enabled_is_refused(account, gateways):
    payment = pending_payment(account)
    body = callback_body(payment.reference)
    signature = callback_signature(body)
    gateways.PAYMENT_GATEWAYS = ["manual"]

    with pytest.raises(ValidationError) as refused:
        deliver(body, signature=signature)

    assert refused.value.messages == ["Unknown payment method."]
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()


def test_callbacks_are_refused_while_no_secret_is_configured(account, gateways):
    payment = pending_payment(account)
    gateways.PAYMENT_CALLBACK_SECRET = ""

    with pytest.raises(ValidationError) as refused:
        payment_callback(gateway_code="test", body=callback_body(payment.reference), headers={"X-Signature": ""})

    assert refused.value.messages == ["Payment callbacks are not configured (PAYMENT_CALLBACK_SECRET)."]
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("body", [b"not json", b'{"status": "paid"}', b"[]", b'"paid"', b"\xff\xfe"])
def test_a_signed_callback_that_cannot_be_read_is_refused(account, gateways, body):
    pending_payment(account)

    with pytest.raises(ValidationError) as refused:
        deliver(body)

    assert refused.value.messages == ["The callback could not be read."]
    assert not LedgerEntry.objects.exists()


def test_a_paid_callback_for_a_cancelled_payment_is_refused_and_credits_nothing(account, gateways):
    payment = pending_payment(account)
    payment_cancel(payment=payment)

    with pytest.raises(ValidationError) as refused:
        deliver(callback_body(payment.reference))

    assert refused.value.messages == [f"Payment {payment.reference} was cancelled."]
    assert not LedgerEntry.objects.exists()


def test_the_callback_url_accepts_a_signed_post_without_a_csrf_token(account, gateways):
    payment = pending_payment(account)
    body = callback_body(payment.reference)
    gateway_server = BrowserClient(enforce_csrf_checks=True)
    url = reverse("gateway_callback", args=["test"])

    first = gateway_server.post(url, data=body, content_type="application/json", headers={"X-Signature": callback_signature(body)})
    second = gateway_server.post(url, data=body, content_type="application/json", headers={"X-Signature": callback_signature(body)})

    assert (first.status_code, first.content) == (200, b"OK")
    assert (second.status_code, second.content) == (200, b"OK")
    assert Payment.objects.get().status == PaymentStatus.PAID
    assert entries(account) == [(LedgerEntryKind.TOPUP, Decimal("250.00"))]


def test_the_callback_url_answers_400_with_the_reason_to_a_bad_signature(account, gateways):
    payment = pending_payment(account)
    gateway_server = BrowserClient(enforce_csrf_checks=True)

    response = gateway_server.post(
        reverse("gateway_callback", args=["test"]),
        data=callback_body(payment.reference),
        content_type="application/json",
        headers={"X-Signature": "0" * 64},
    )

    assert response.status_code == 400
    assert response.content.decode() == "The callback's signature does not match."
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert not LedgerEntry.objects.exists()
