from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.choices import LedgerEntryKind
from billing.models import LedgerEntry
from billing.selectors import client_balance, client_list_with_balance
from billing.services import InsufficientFunds, ledger_entry_add
from tests.conftest import postgres_only, run_at_once
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db


def test_balance_is_the_sum_of_the_clients_entries():
    client, other = ClientFactory(), ClientFactory()
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.10"))
    ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("30.05"))
    ledger_entry_add(client=client, kind=LedgerEntryKind.REFUND, amount=Decimal("10.00"))
    ledger_entry_add(client=client, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("-5.02"))
    ledger_entry_add(client=other, kind=LedgerEntryKind.TOPUP, amount=Decimal("999.00"))

    assert client_balance(client=client) == Decimal("75.03")
    assert isinstance(client_balance(client=client), Decimal)
    assert client_list_with_balance().get(pk=client.pk).balance == Decimal("75.03")
    assert list(client.ledger_entries.order_by("pk").values_list("amount", flat=True)) == [
        Decimal("100.10"),
        Decimal("-30.05"),
        Decimal("10.00"),
        Decimal("-5.02"),
    ]


def test_a_client_without_entries_has_a_zero_balance():
    client = ClientFactory()
    assert client_balance(client=client) == Decimal("0")
    assert client_list_with_balance().get(pk=client.pk).balance == Decimal("0")


def test_a_charge_above_the_balance_says_how_much_is_missing_and_writes_nothing():
    client = ClientFactory(currency="RUB")
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.00"))

    with pytest.raises(InsufficientFunds) as refused:
        ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("130.50"))

    assert refused.value.missing == Decimal("30.50")
    assert "30.50\xa0RUB more is needed" in refused.value.messages[0]
    assert client.ledger_entries.count() == 1
    assert client_balance(client=client) == Decimal("100.00")


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        (LedgerEntryKind.TOPUP, "0"),
        (LedgerEntryKind.TOPUP, "-10"),
        (LedgerEntryKind.REFUND, "-1"),
        (LedgerEntryKind.CHARGE, "-5"),
        (LedgerEntryKind.ADJUSTMENT, "0"),
    ],
)
def test_amounts_that_make_no_sense_for_their_kind_are_refused(kind, amount):
    client = ClientFactory()
    with pytest.raises(ValidationError):
        ledger_entry_add(client=client, kind=kind, amount=Decimal(amount))
    assert not LedgerEntry.objects.exists()


def test_the_database_refuses_an_entry_whose_sign_contradicts_its_kind():
    client = ClientFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("10.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        LedgerEntry.objects.create(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("-10.00"))


def test_a_repeated_call_with_the_same_idempotency_key_adds_one_entry():
    client = ClientFactory()
    first = ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("50"), idempotency_key="payment-1")
    second = ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("50"), idempotency_key="payment-1")
    assert first.pk == second.pk
    assert client_balance(client=client) == Decimal("50")


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_concurrent_top_ups_and_charges_never_lose_an_entry():
    client = ClientFactory()
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("100.00"))

    def work(i):
        kind = LedgerEntryKind.TOPUP if i % 2 else LedgerEntryKind.CHARGE
        ledger_entry_add(client=client, kind=kind, amount=Decimal("10.00"))

    outcomes = run_at_once(20, work)

    assert outcomes == [None] * 20
    assert client.ledger_entries.count() == 21
    assert client_balance(client=client) == Decimal("100.00")


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_never_spend_the_same_money_twice():
    client = ClientFactory()
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("50.00"))

    outcomes = run_at_once(12, lambda i: ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("10.00")))

    assert sum(outcome is None for outcome in outcomes) == 5
    assert all(isinstance(outcome, InsufficientFunds) for outcome in outcomes if outcome is not None)
    assert client_balance(client=client) == Decimal("0.00")


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_with_one_idempotency_key_add_one_entry():
    client = ClientFactory()

    outcomes = run_at_once(
        8, lambda i: ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("10"), idempotency_key="same")
    )

    assert outcomes == [None] * 8
    assert client.ledger_entries.count() == 1
