"""Edge cases of the billing cycle found by a hostile review, with the dates and amounts of the acceptance examples.

UTC, 10.00 a month, default settings (tests/cycle/conftest.py).
"""

import contextlib
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.choices import LedgerEntryKind, PanelAction, ServiceStatus, SuspendReason
from billing.cycle import billing_run
from billing.selectors import client_balance
from billing.services import (
    NothingToDo,
    ledger_entry_add,
    service_action_request,
    service_client_renew,
    service_expiry_set,
    service_mark_paid,
    service_renew,
)
from tests.cycle.conftest import charges, operations, utc

pytestmark = pytest.mark.django_db(transaction=True)


def run_without_worker(day: date):
    """The daily run for `day` at 00:30 UTC, the panel worker not run yet: what it queued is still on its way."""
    with time_machine.travel(datetime.combine(day, time(0, 30), UTC), tick=False):
        billing_run(day=day)


def run_days(run_day, first: date, last: date):
    for ordinal in range(first.toordinal(), last.toordinal() + 1):
        run_day(date.fromordinal(ordinal))



def test_a_top_up_while_the_deletion_is_on_its_way_does_not_charge_for_a_service_about_to_be_deleted(activated, run_day, tasks, on):
    # Example 10's S5: suspended for non-payment on 2026-04-03, its deletion queued by the run for 2026-04-17;
    # the panel is slow (down, retrying), so the close operation is still queued when the client pays.
    s5 = activated(balance="4.00", renewals=1)
    run_day(date(2026, 4, 3))
    run_without_worker(date(2026, 4, 17))
    assert operations(s5, PanelAction.CLOSE) == 1

    with on(utc(2026, 4, 17, 9)):  # the worker runs as the block ends: the queued close goes through
        ledger_entry_add(client=s5.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))

    s5.refresh_from_db()
    assert s5.status == ServiceStatus.DELETED
    assert charges(s5) == []
    assert client_balance(client=s5.client) == Decimal("24.00")



def test_renew_now_while_the_deletion_is_on_its_way_charges_nothing(activated, run_day, tasks, on):
    s5 = activated(balance="4.00", renewals=1)
    run_day(date(2026, 4, 3))
    run_without_worker(date(2026, 4, 17))
    ledger_entry_add(client=s5.client, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("20.00"))  # no money_arrived hook
    s5.refresh_from_db()

    with on(utc(2026, 4, 17, 9)), contextlib.suppress(ValidationError):  # the worker runs as the block ends: the close goes through
        service_client_renew(service=s5, periods=1, expected_expiry=s5.expires_at, user=s5.ordered_by)

    s5.refresh_from_db()
    assert s5.status == ServiceStatus.DELETED
    assert charges(s5) == []



def test_a_service_paid_while_its_suspension_is_on_its_way_ends_up_active(activated, tasks, on):
    # Example 7's S5: the run for 2026-04-03 queues the suspension; the panel has not done it when the client tops up.
    s5 = activated(balance="4.00", renewals=1)
    run_without_worker(date(2026, 4, 3))
    assert operations(s5, PanelAction.SUSPEND) == 1

    with on(utc(2026, 4, 3, 0, 40)):  # the worker runs as the block ends: the queued suspension goes through
        ledger_entry_add(client=s5.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))

    s5.refresh_from_db()
    assert charges(s5) == [Decimal("-10.00")]
    assert s5.expires_at == utc(2026, 4, 30, 10)
    assert s5.status == ServiceStatus.ACTIVE



def test_staff_suspending_for_abuse_while_the_nonpayment_suspension_is_queued_is_not_lifted_by_a_top_up(activated, tasks, on, staff_user):
    s5 = activated(balance="4.00", renewals=1)
    run_without_worker(date(2026, 4, 3))

    with on(utc(2026, 4, 3, 9)), contextlib.suppress(NothingToDo):
        service_action_request(service=s5, action=PanelAction.SUSPEND, by=staff_user, reason="spam", suspend_reason=SuspendReason.ABUSE)
    with on(utc(2026, 4, 5, 12)):
        ledger_entry_add(client=s5.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))

    s5.refresh_from_db()
    assert (s5.status, s5.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.ABUSE)
    assert operations(s5, PanelAction.RESUME) == 0



def test_a_resume_on_its_way_does_not_lift_a_suspension_for_abuse_made_meanwhile(activated, run_day, tasks, staff_user):
    s5 = activated(balance="4.00", renewals=1)
    run_day(date(2026, 4, 3))
    with time_machine.travel(utc(2026, 4, 5, 12), tick=False):
        ledger_entry_add(client=s5.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))  # queues the resume
        assert operations(s5, PanelAction.RESUME) == 1
        s5.refresh_from_db()
        # Refused while the resume is on its way (it may be in the panel already), with what to do instead.
        with pytest.raises(ValidationError, match="is being resumed right now: suspend it again once that is done"):
            service_action_request(service=s5, action=PanelAction.SUSPEND, by=staff_user, reason="spam", suspend_reason=SuspendReason.ABUSE)
        tasks.run_all()
        service_action_request(service=s5, action=PanelAction.SUSPEND, by=staff_user, reason="spam", suspend_reason=SuspendReason.ABUSE)
        tasks.run_all()

    s5.refresh_from_db()
    assert (s5.status, s5.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.ABUSE)



def test_a_service_resumed_by_staff_months_after_its_expiry_is_renewed_to_today_not_deleted(activated, run_day, on, staff_user):
    # Example 9's S6 (abuse, expires 2026-03-31, balance 50.00); staff lift the suspension on 2026-07-15.
    s6 = activated(balance="50.00", renewals=1)
    with on(utc(2026, 3, 10, 9)):
        service_action_request(service=s6, action=PanelAction.SUSPEND, suspend_reason=SuspendReason.ABUSE)
    with on(utc(2026, 7, 15, 9)):
        service_action_request(service=s6, action=PanelAction.RESUME, by=staff_user, reason="cleaned up")

    run_days(run_day, date(2026, 7, 16), date(2026, 8, 1))

    s6.refresh_from_db()
    # The run for 07-16 renews the four periods that reach today (until 07-31, 40.00), the run for 07-28 the next one.
    assert operations(s6, PanelAction.CLOSE) == operations(s6, PanelAction.SUSPEND) - 1 == 0
    assert s6.status == ServiceStatus.ACTIVE
    assert s6.expires_at == utc(2026, 8, 31, 10)
    assert client_balance(client=s6.client) == Decimal("0.00")



def test_a_renewal_after_staff_took_a_refunded_period_back_is_charged(activated, run_day, on, staff_user):
    s1 = activated(balance="25.00")
    run_day(date(2026, 2, 25))  # -10.00, until 2026-03-31
    s1.refresh_from_db()
    with on(utc(2026, 2, 26, 9)):
        # The client disputes the renewal: staff refund it and take the period back.
        ledger_entry_add(client=s1.client, kind=LedgerEntryKind.REFUND, amount=Decimal("10.00"), created_by=staff_user)
        service_expiry_set(service=s1, expires_at=utc(2026, 2, 28, 10), reason="renewal refunded", by=staff_user)
    s1.refresh_from_db()
    assert client_balance(client=s1.client) == Decimal("25.00")

    with on(utc(2026, 2, 27, 9)):
        service_renew(service=s1, expected_expiry=s1.expires_at)  # Renew now

    s1.refresh_from_db()
    assert s1.expires_at == utc(2026, 3, 31, 10)
    assert client_balance(client=s1.client) == Decimal("15.00")



def test_a_free_service_renews_whatever_the_balance(activated, run_day, staff_user):
    free = activated(renewals=0)
    free.price = Decimal("0.00")
    free.save(update_fields=["price"])
    # Staff correct a mistake with a negative adjustment: the balance goes below zero (allowed for adjustments).
    ledger_entry_add(client=free.client, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("-5.00"), created_by=staff_user)

    run_days(run_day, date(2026, 2, 25), date(2026, 3, 3))

    free.refresh_from_db()
    assert free.status == ServiceStatus.ACTIVE
    assert free.expires_at == utc(2026, 3, 31, 10)



def test_renew_now_shows_the_currency_it_charges_in(activated, client):
    s1 = activated(balance="25.00")
    assert s1.client.currency == "RUB"
    s1.tariff.currency = "USD"  # staff now sell this tariff in dollars; the service keeps its price in roubles
    s1.tariff.save(update_fields=["currency"])
    client.force_login(s1.ordered_by)

    with time_machine.travel(utc(2026, 2, 26, 9), tick=False):
        page = client.get(reverse("service_renew", args=[s1.pk]), {"periods": 1, "expires": s1.expires_at.isoformat()})

    text = page.content.decode()
    assert page.status_code == 200
    assert "USD" not in text  # today: "Charged now from your balance 10.00 USD" for a charge of 10.00 RUB



# What held: the checks below pass today and guard what the review tried to break.


def test_an_expiry_at_half_past_midnight_moscow_is_renewed_and_suspended_by_moscow_dates(make_service, tasks, settings, on):
    settings.TIME_ZONE = "Europe/Moscow"

    rich, poor = make_service(price=Decimal("10.00")), make_service(price=Decimal("10.00"))
    with on(utc(2026, 1, 30, 21, 30)):  # 2026-01-31 00:30 in Moscow
        for service in (rich, poor):
            service_mark_paid(service=service)
    with on(utc(2026, 1, 30, 22)):
        ledger_entry_add(client=rich.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"))
    rich.refresh_from_db()
    assert rich.expires_at == utc(2026, 2, 27, 21, 30)  # 2026-02-28 00:30 Moscow

    def run(day, at):
        with on(at):
            billing_run(day=day)

    run(date(2026, 2, 24), utc(2026, 2, 23, 21, 30))  # 00:30 Moscow
    assert charges(rich) == []
    run(date(2026, 2, 25), utc(2026, 2, 25, 20, 59))  # 23:59 Moscow
    rich.refresh_from_db()
    assert rich.expires_at == utc(2026, 3, 30, 21, 30)  # 2026-03-31 00:30 Moscow
    run(date(2026, 3, 2), utc(2026, 3, 2, 20, 59))  # 23:59 Moscow
    assert operations(poor, PanelAction.SUSPEND) == 0
    run(date(2026, 3, 3), utc(2026, 3, 2, 21, 1))  # 00:01 Moscow
    assert operations(poor, PanelAction.SUSPEND) == 1


@pytest.mark.parametrize("odd", ["active without an expiry", "suspended for non-payment without suspended_at"])
def test_odd_states_give_no_server_error_in_the_client_area_or_the_admin(activated, client, staff_user, odd):
    service = activated(balance="25.00")
    if odd == "active without an expiry":
        service.expires_at = service.period_anchor = None
    else:
        service.status, service.suspend_reason, service.suspended_at = ServiceStatus.SUSPENDED, SuspendReason.NONPAYMENT, None
    service.save()
    client.force_login(service.ordered_by)
    pages = [
        reverse("client_area"),
        reverse("service_detail", args=[service.pk]),
        reverse("service_renew", args=[service.pk]) + "?periods=1&expires=2026-02-28T10:00:00%2B00:00",
        reverse("notifications"),
    ]
    statuses = [client.get(page).status_code for page in pages]
    client.force_login(staff_user)
    admin_pages = [
        reverse("admin:billing_service_change", args=[service.pk]),
        reverse("admin:billing_service_expiry", args=[service.pk]),
        reverse("admin:billing_service_changelist") + "?expires=overdue",
        reverse("admin:billing_service_changelist") + "?expires=7",
    ]
    statuses += [client.get(page).status_code for page in admin_pages]
    renew = client.post(reverse("admin:billing_service_changelist"), {"action": "renew_now", "_selected_action": [service.pk]})
    expiry = client.post(
        reverse("admin:billing_service_expiry", args=[service.pk]),
        {"expires_at_0": "2026-04-01", "expires_at_1": "10:00", "reason": "goodwill"},
    )

    assert all(status < 500 for status in statuses), statuses
    assert renew.status_code < 500 and expiry.status_code < 500
