"""Renewing a service: one charge per period, the expiry moved on from where it was, never twice."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import translation

from billing.choices import LedgerEntryKind, ServiceStatus
from billing.models import LedgerEntry
from billing.selectors import client_balance
from billing.services import InsufficientFunds, NothingToDo, ledger_entry_add, service_renew
from tests.conftest import postgres_only, run_at_once
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"


def s1(balance="25.00", **fields):
    """The issue's S1: 10.00 a month, anchored 2026-01-31 10:00, paid until 2026-02-28 10:00."""
    fields = {"status": ServiceStatus.ACTIVE, "period_anchor": utc(2026, 1, 31, 10), "expires_at": utc(2026, 2, 28, 10)} | fields
    service = ServiceFactory(price=Decimal("10.00"), **fields)
    if Decimal(balance):
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    return service


def charges(service):
    return list(LedgerEntry.objects.filter(client=service.client, kind=LedgerEntryKind.CHARGE).values_list("amount", flat=True))


def test_a_renewal_charges_one_period_and_moves_the_expiry_on_from_the_old_one():
    service = s1()

    service_renew(service=service)

    service.refresh_from_db()
    assert service.expires_at == utc(2026, 3, 31, 10)
    assert charges(service) == [Decimal("-10.00")]
    assert client_balance(client=service.client) == Decimal("15.00")


def test_renewals_follow_the_anchor_day_and_never_drift():
    service = s1(balance="100.00")

    ends = []
    for _ in range(3):
        ends.append(service_renew(service=service).expires_at)

    assert ends == [utc(2026, 3, 31, 10), utc(2026, 4, 30, 10), utc(2026, 5, 31, 10)]


def test_renewing_several_periods_at_once_charges_each_and_counts_from_the_anchor():
    service = s1()

    service_renew(service=service, periods=2)

    service.refresh_from_db()
    assert service.expires_at == utc(2026, 4, 30, 10)
    assert charges(service) == [Decimal("-20.00")]


def test_the_renewal_charge_reads_in_each_readers_language():
    service = s1()

    service_renew(service=service)

    (entry,) = LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE)
    with translation.override("en"):
        assert str(entry.reference) == f"Service #{service.pk}, renewal until March 31, 2026"
    with translation.override("ru"):
        assert str(entry.reference) == f"Услуга #{service.pk}, продление до 31 марта 2026 г."  # noqa: RUF001


def test_a_renewal_the_caller_did_not_see_coming_is_not_repeated():
    """A double click on Renew now: the second request names the expiry it saw, which has moved on."""
    service = s1()
    seen = service.expires_at
    service_renew(service=service, expected_expiry=seen)

    with pytest.raises(NothingToDo, match="has just been renewed: nothing was charged"):
        service_renew(service=service, expected_expiry=seen)

    assert charges(service) == [Decimal("-10.00")]
    service.refresh_from_db()
    assert service.expires_at == utc(2026, 3, 31, 10)


def test_not_enough_money_says_how_much_is_missing_and_changes_nothing():
    service = s1(balance="4.00")

    with pytest.raises(InsufficientFunds) as refused:
        service_renew(service=service)

    assert refused.value.missing == Decimal("6.00")
    assert charges(service) == []
    service.refresh_from_db()
    assert service.expires_at == utc(2026, 2, 28, 10)


@pytest.mark.parametrize("periods", [0, -1, 13, True, "2", 1.5])
def test_a_number_of_periods_out_of_range_is_refused(periods):
    service = s1()

    with pytest.raises(ValidationError, match="Renew for 1 to 12 periods"):
        service_renew(service=service, periods=periods)

    assert charges(service) == []


def test_an_order_not_yet_active_cannot_be_renewed():
    service = s1(status=ServiceStatus.ORDERED, period_anchor=None, expires_at=None)

    with pytest.raises(ValidationError, match="has no paid period yet"):
        service_renew(service=service)

    assert charges(service) == []


def test_a_deleted_service_cannot_be_renewed():
    service = s1(status=ServiceStatus.DELETED)

    with pytest.raises(ValidationError, match="it cannot be renewed"):
        service_renew(service=service)

    assert charges(service) == []


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_concurrent_renewals_of_what_one_client_saw_charge_once():
    """Renew now clicked in eight tabs at once: one renewal, seven told it already happened."""
    with time_machine.travel(utc(2026, 2, 20, 9), tick=False):  # before the expiry: the top-up renews nothing by itself
        service = s1(balance="100.00")
        seen = service.expires_at

        outcomes = run_at_once(8, lambda i: service_renew(service=service, expected_expiry=seen))

    assert outcomes.count(None) == 1
    assert sum(isinstance(outcome, NothingToDo) for outcome in outcomes) == 7
    assert charges(service) == [Decimal("-10.00")]
    service.refresh_from_db()
    assert service.expires_at == utc(2026, 3, 31, 10)


def test_a_renewal_is_written_in_the_services_history_in_each_readers_language(staff_user):
    service = s1()

    service_renew(service=service, periods=2, by=staff_user)

    change = service.status_changes.get()
    assert (change.from_status, change.to_status, change.changed_by) == (ServiceStatus.ACTIVE, ServiceStatus.ACTIVE, staff_user)
    with translation.override("en"):
        assert str(change.reason) == "Renewed until April 30, 2026: 20.00\u00a0RUB charged."
    with translation.override("ru"):
        assert str(change.reason) == "Списано 20,00\u00a0RUB, услуга продлена до 30 апреля 2026 г."  # noqa: RUF001
