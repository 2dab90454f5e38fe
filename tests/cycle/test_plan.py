"""What the daily run plans for one service on one date: a pure function of the service, the date and the balance."""

from datetime import date
from decimal import Decimal

import pytest

from billing.choices import BillingAction, NotificationKind, PanelAction, ServiceStatus, SuspendReason
from billing.cycle import Step, service_plan
from billing.cycle_rules import CycleRules
from billing.models import Service
from tests.cycle.conftest import utc

RULES = CycleRules(renew_days_before=3, notice_days=(7, 3, 1), grace_days=3, delete_after_days=14)


def service(**fields):
    fields = {
        "pk": 5,
        "status": ServiceStatus.ACTIVE,
        "price": Decimal("10.00"),
        "period": 1,
        "period_anchor": utc(2026, 1, 31, 10),
        "expires_at": utc(2026, 3, 31, 10),
        "auto_renew": True,
    } | fields
    return Service(**fields)


def plan(svc, day, balance="0.00", renewed=False, pending=None, notices=()):
    return service_plan(svc, day=day, rules=RULES, balance=Decimal(balance), renewed=renewed, pending=pending, notices=set(notices))


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"


def test_nothing_before_the_renewal_day_and_a_renewal_from_it_on():
    assert plan(service(), date(2026, 3, 27), balance="25.00") == []
    assert plan(service(), date(2026, 3, 28), balance="25.00") == [Step(BillingAction.RENEW)]
    assert plan(service(), date(2026, 4, 2), balance="10.00") == [Step(BillingAction.RENEW)]


def test_a_renewal_this_run_already_made_is_not_made_again():
    assert plan(service(), date(2026, 3, 28), balance="25.00", renewed=True) == []


def test_a_renewal_day_that_is_a_notice_day_sends_no_notice_when_renewed():
    assert plan(service(), date(2026, 3, 30), balance="10.00") == [Step(BillingAction.RENEW)]


def test_low_balance_and_expiry_notices_on_the_notice_days_only_and_once():
    low = Step(BillingAction.NOTICE, NotificationKind.LOW_BALANCE)
    assert plan(service(), date(2026, 3, 24), balance="9.99") == [low]
    assert plan(service(), date(2026, 3, 25), balance="9.99") == []
    assert plan(service(), date(2026, 3, 24), balance="9.99", notices=["low_balance:5:2026-03-24"]) == []
    assert plan(service(auto_renew=False), date(2026, 3, 30), balance="100.00") == [Step(BillingAction.NOTICE, NotificationKind.EXPIRES)]


def test_a_free_service_renews_with_an_empty_balance():
    assert plan(service(price=Decimal("0.00")), date(2026, 3, 28)) == [Step(BillingAction.RENEW)]


def test_suspended_for_nonpayment_grace_days_after_the_expiry_unless_already_on_its_way():
    assert plan(service(), date(2026, 4, 2)) == []
    assert plan(service(), date(2026, 4, 3)) == [Step(BillingAction.SUSPEND)]
    assert plan(service(), date(2026, 5, 20)) == [Step(BillingAction.SUSPEND)]
    assert plan(service(), date(2026, 4, 3), pending=PanelAction.SUSPEND) == []


def nonpayment(**fields):
    return service(status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT, suspended_at=utc(2026, 4, 3, 0, 40), **fields)


def test_a_service_suspended_for_nonpayment_is_renewed_and_resumed_or_deleted_after_fourteen_days():
    assert plan(nonpayment(), date(2026, 4, 10), balance="10.00") == [Step(BillingAction.RENEW), Step(BillingAction.RESUME)]
    assert plan(nonpayment(), date(2026, 4, 16)) == []
    assert plan(nonpayment(), date(2026, 4, 17)) == [Step(BillingAction.DELETE)]
    assert plan(nonpayment(), date(2026, 4, 17), pending=PanelAction.CLOSE) == []
    assert plan(nonpayment(expires_at=utc(2026, 5, 31, 10)), date(2026, 4, 17)) == [Step(BillingAction.RESUME)]


def test_a_service_behind_by_more_than_a_period_renews_all_that_reach_today_or_none():
    two_periods_behind = nonpayment(expires_at=utc(2026, 2, 28, 10))
    renewed = [Step(BillingAction.RENEW, periods=2), Step(BillingAction.RESUME)]

    assert plan(two_periods_behind, date(2026, 4, 10), balance="20.00") == renewed
    assert plan(two_periods_behind, date(2026, 4, 17), balance="100.00") == renewed
    assert plan(two_periods_behind, date(2026, 4, 10), balance="19.99") == []
    assert plan(two_periods_behind, date(2026, 4, 17), balance="19.99") == [Step(BillingAction.DELETE)]
    assert plan(service(expires_at=utc(2026, 1, 31, 10)), date(2026, 4, 2), balance="30.00") == [Step(BillingAction.RENEW, periods=3)]


def test_nothing_is_renewed_while_the_deletion_is_on_its_way():
    assert plan(nonpayment(), date(2026, 4, 20), balance="100.00", pending=PanelAction.CLOSE) == []


def test_a_free_service_renews_with_a_balance_below_zero():
    assert plan(service(price=Decimal("0.00")), date(2026, 3, 28), balance="-5.00") == [Step(BillingAction.RENEW)]


@pytest.mark.parametrize("reason", [SuspendReason.ABUSE, SuspendReason.STAFF, SuspendReason.CLIENT])
def test_a_suspension_not_for_nonpayment_is_left_alone(reason):
    suspended = service(status=ServiceStatus.SUSPENDED, suspend_reason=reason, suspended_at=utc(2026, 3, 10))

    assert [plan(suspended, date(2026, 3, day), balance="50.00") for day in (24, 28, 31)] == [[], [], []]
    assert plan(suspended, date(2026, 6, 1), balance="50.00") == []


@pytest.mark.parametrize("status", [ServiceStatus.ORDERED, ServiceStatus.PROCESSING, ServiceStatus.FAILED, ServiceStatus.DELETED])
def test_services_that_are_not_running_are_left_alone(status):
    assert plan(service(status=status), date(2026, 4, 20), balance="50.00") == []
