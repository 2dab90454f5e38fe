"""The eleven acceptance examples of the billing cycle, with their dates and amounts (UTC, 10.00 a month, default settings)."""

from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management.base import CommandError

from billing.choices import BillingRunStatus, LedgerEntryKind, NotificationKind, PanelAction, ServiceStatus, SuspendReason
from billing.models import BillingRun, LedgerEntry, Notification
from billing.selectors import client_balance
from billing.services import ledger_entry_add, service_action_request, service_auto_renew_set, service_renew
from tests.cycle.conftest import charges, operations, utc

pytestmark = pytest.mark.django_db(transaction=True)


def notices(service, kind):
    return sorted(Notification.objects.filter(service=service, kind=kind).values_list("day", flat=True))


def test_1_periods_follow_the_anchor_day(activated):
    service = activated(balance="30.00")
    assert service.expires_at == utc(2026, 2, 28, 10)

    ends = [service_renew(service=service).expires_at for _ in range(3)]

    assert ends == [utc(2026, 3, 31, 10), utc(2026, 4, 30, 10), utc(2026, 5, 31, 10)]


def test_2_renewed_three_days_before_the_expiry_once(activated, run_day):
    s1 = activated(balance="25.00")

    run_day(date(2026, 2, 24))
    assert charges(s1) == []

    run_day(date(2026, 2, 25))

    s1.refresh_from_db()
    assert charges(s1) == [Decimal("-10.00")]
    assert s1.expires_at == utc(2026, 3, 31, 10)
    assert client_balance(client=s1.client) == Decimal("15.00")
    assert notices(s1, NotificationKind.RENEWED) == [date(2026, 2, 25)]
    renewed_emails = [email for email in mail.outbox if email.to == [s1.client.email] and "renewed" in email.subject.lower()]
    assert len(renewed_emails) == 1


def test_3_the_same_date_again_does_nothing_new_and_a_second_process_is_refused(activated, run_day):
    s1 = activated(balance="25.00")
    run_day(date(2026, 2, 25))
    first = BillingRun.objects.get(day=date(2026, 2, 25), dry_run=False)
    emails = len(mail.outbox)

    run_day(date(2026, 2, 25))

    again = BillingRun.objects.get(day=date(2026, 2, 25), dry_run=False)
    assert charges(s1) == [Decimal("-10.00")]
    assert Notification.objects.filter(service=s1).count() == 1
    assert len(mail.outbox) == emails
    assert (again.renewed, again.notified, again.suspended, again.deleted, again.failed) == (1, 0, 0, 0, 0)
    assert (first.renewed, again.status) == (1, BillingRunStatus.DONE)

    # A second process while one runs: the running one holds the date's lease.
    BillingRun.objects.filter(pk=again.pk).update(status=BillingRunStatus.RUNNING, worker="host-a:123", lease_until=utc(2026, 2, 25, 1))
    with pytest.raises(CommandError, match="A billing run for 2026-02-25 is in progress"):
        run_day(date(2026, 2, 25))
    assert charges(s1) == [Decimal("-10.00")]


def test_4_a_run_that_stopped_after_the_first_service_finishes_the_rest_once(activated, run_day):
    s2, s3, s4 = (activated(balance="25.00") for _ in range(3))
    # What a run killed after S2 committed leaves: S2 renewed and recorded, the date's run still "running".
    run_day(date(2026, 2, 25))
    for service in (s3, s4):
        LedgerEntry.objects.filter(client=service.client, kind=LedgerEntryKind.CHARGE, created_at__gte=utc(2026, 2, 1)).delete()
        service.expires_at = utc(2026, 2, 28, 10)
        service.save(update_fields=["expires_at"])
    run = BillingRun.objects.get(day=date(2026, 2, 25))
    run.items.exclude(service=s2).delete()
    BillingRun.objects.filter(pk=run.pk).update(status=BillingRunStatus.RUNNING, lease_until=utc(2026, 2, 25, 0, 20))

    run_day(date(2026, 2, 25))

    assert [charges(service) for service in (s2, s3, s4)] == [[Decimal("-10.00")]] * 3
    run.refresh_from_db()
    assert (run.renewed, run.status) == (3, BillingRunStatus.DONE)


def test_5_missed_days_are_caught_up_once(activated, run_day):
    s1 = activated(balance="25.00")
    s9 = activated(balance="0.00")

    run_day(date(2026, 2, 28))
    s1.refresh_from_db()
    assert (charges(s1), s1.expires_at) == ([Decimal("-10.00")], utc(2026, 3, 31, 10))

    run_day(date(2026, 3, 4))
    run_day(date(2026, 3, 4))

    assert operations(s9, PanelAction.SUSPEND) == 1
    assert notices(s9, NotificationKind.LOW_BALANCE) == []  # the skipped notice days are not replayed


def test_6_low_balance_notices_on_the_notice_days_only(activated, run_day):
    s5 = activated(balance="4.00", renewals=1)
    rich = activated(balance="10.00", renewals=1)
    assert s5.expires_at == utc(2026, 3, 31, 10)

    for day in range(20, 31):
        run_day(date(2026, 3, day))
    run_day(date(2026, 3, 24))

    assert notices(s5, NotificationKind.LOW_BALANCE) == [date(2026, 3, 24), date(2026, 3, 28), date(2026, 3, 30)]
    assert notices(rich, NotificationKind.LOW_BALANCE) == []


def test_7_and_8_suspended_after_the_grace_days_and_renewed_at_once_by_a_top_up(activated, run_day, on):
    s5 = activated(balance="4.00", renewals=1)

    for day in (date(2026, 3, 31), date(2026, 4, 1), date(2026, 4, 2)):
        run_day(day)
        s5.refresh_from_db()
        assert s5.status == ServiceStatus.ACTIVE
    assert operations(s5, PanelAction.SUSPEND) == 0

    run_day(date(2026, 4, 3))

    s5.refresh_from_db()
    assert operations(s5, PanelAction.SUSPEND) == 1
    assert (s5.status, s5.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.NONPAYMENT)
    assert charges(s5) == []

    with on(utc(2026, 4, 5, 12)):
        ledger_entry_add(client=s5.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))

    s5.refresh_from_db()
    assert charges(s5) == [Decimal("-10.00")]
    assert s5.expires_at == utc(2026, 4, 30, 10)
    assert operations(s5, PanelAction.RESUME) == 1
    assert (s5.status, s5.suspend_reason) == (ServiceStatus.ACTIVE, "")
    assert client_balance(client=s5.client) == Decimal("14.00")


def test_9_a_suspension_for_abuse_is_left_alone(activated, run_day, on):
    s6 = activated(balance="50.00", renewals=1)
    with on(utc(2026, 3, 10, 9)):
        service_action_request(service=s6, action=PanelAction.SUSPEND, suspend_reason=SuspendReason.ABUSE)
    s6.refresh_from_db()
    assert (s6.status, s6.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.ABUSE)

    day = date(2026, 3, 28)
    while day <= date(2026, 5, 1):
        run_day(day)
        day = date.fromordinal(day.toordinal() + 1)
    with on(utc(2026, 5, 1, 12)):
        ledger_entry_add(client=s6.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))

    s6.refresh_from_db()
    assert charges(s6) == []
    assert [operations(s6, action) for action in (PanelAction.SUSPEND, PanelAction.RESUME, PanelAction.CLOSE)] == [1, 0, 0]
    assert (s6.status, s6.suspend_reason, s6.expires_at) == (ServiceStatus.SUSPENDED, SuspendReason.ABUSE, utc(2026, 3, 31, 10))
    assert client_balance(client=s6.client) == Decimal("70.00")


def test_10_deleted_fourteen_days_after_the_suspension_for_nonpayment(activated, run_day):
    s5 = activated(balance="4.00", renewals=1)
    run_day(date(2026, 4, 3))
    s5.refresh_from_db()
    assert s5.status == ServiceStatus.SUSPENDED

    run_day(date(2026, 4, 16))
    assert operations(s5, PanelAction.CLOSE) == 0

    run_day(date(2026, 4, 17))
    run_day(date(2026, 4, 17))

    s5.refresh_from_db()
    assert operations(s5, PanelAction.CLOSE) == 1
    assert s5.status == ServiceStatus.DELETED
    assert charges(s5) == []


def test_11_without_auto_renew_a_notice_a_suspension_and_renew_now(activated, run_day, on):
    s7 = activated(balance="100.00", renewals=1)
    service_auto_renew_set(service=s7, enabled=False)

    day = date(2026, 3, 20)
    while day <= date(2026, 4, 3):
        run_day(day)
        day = date.fromordinal(day.toordinal() + 1)

    s7.refresh_from_db()
    assert charges(s7) == []
    assert notices(s7, NotificationKind.EXPIRES) == [date(2026, 3, 24), date(2026, 3, 28), date(2026, 3, 30)]
    assert (s7.status, s7.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.NONPAYMENT)

    with on(utc(2026, 4, 4, 9)):
        service_renew(service=s7, expected_expiry=s7.expires_at)

    s7.refresh_from_db()
    assert charges(s7) == [Decimal("-10.00")]
    assert s7.expires_at == utc(2026, 4, 30, 10)
    assert operations(s7, PanelAction.RESUME) == 1
    assert s7.status == ServiceStatus.ACTIVE


def test_staff_suspending_for_abuse_a_service_suspended_for_nonpayment_keeps_a_top_up_from_resuming_it(activated, run_day, on, staff_user):
    s5 = activated(balance="4.00", renewals=1)
    run_day(date(2026, 4, 3))
    s5.refresh_from_db()
    assert s5.suspend_reason == SuspendReason.NONPAYMENT

    with on(utc(2026, 4, 4, 9)):
        service_action_request(service=s5, action=PanelAction.SUSPEND, by=staff_user, reason="spam", suspend_reason=SuspendReason.ABUSE)
    with on(utc(2026, 4, 5, 12)):
        ledger_entry_add(client=s5.client, kind=LedgerEntryKind.TOPUP, amount=Decimal("20.00"))
    run_day(date(2026, 4, 17))

    s5.refresh_from_db()
    assert (s5.status, s5.suspend_reason) == (ServiceStatus.SUSPENDED, SuspendReason.ABUSE)
    assert charges(s5) == []
    assert [operations(s5, action) for action in (PanelAction.SUSPEND, PanelAction.RESUME, PanelAction.CLOSE)] == [1, 0, 0]
    assert str(s5.status_changes.last().reason) == "Suspend reason changed: Non-payment → Abuse (spam)."
