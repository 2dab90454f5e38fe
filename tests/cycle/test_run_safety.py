"""The daily run's safety in one process: a dry run changes nothing and never holds the date, a failure is reported and
retried, bad options are refused before anything is recorded. Services have no panel here: the run only queues
operations, and a renewal needs none."""

import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.choices import BillingOutcome, BillingRunStatus, LedgerEntryKind, NotificationKind, PanelAction, ServiceStatus, SuspendReason
from billing.cycle import billing_run_finish, billing_run_process, billing_run_start
from billing.models import BillingRun, LedgerEntry, Notification, Service
from billing.services import ledger_entry_add
from billing.tasks import send_notification
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.cycle.conftest import utc
from tests.factories import ClientFactory, OperationFactory, ServiceFactory, TariffPlanFactory

pytestmark = pytest.mark.django_db(transaction=True)

FEB_25 = date(2026, 2, 25)


def billed(tariff, *, expires: datetime, balance: str = "0.00", client=None, **fields) -> Service:
    """A running service of 10.00 a month paid until `expires` (anchored a month before it), its client holding `balance`.

    The money goes in before the service exists: a top-up renews overdue services at once (money_arrived), and
    what is renewed here is the run's to do.
    """
    client = client or ClientFactory()
    if Decimal(balance):
        ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    fields = {"status": ServiceStatus.ACTIVE, "price": Decimal("10.00"), "auto_renew": True} | fields
    return ServiceFactory(
        client=client, tariff=tariff, period_anchor=expires.replace(month=expires.month - 1), expires_at=expires, **fields
    )


@pytest.fixture
def hosting():
    return TariffPlanFactory(monthly_price=Decimal("10.00"))


@dataclass
class Ran:
    out: str
    err: str
    error: str | None  # the CommandError's message: the command exited non-zero


def send_emails(tasks) -> None:
    """What the worker would send; the panel operations stay queued (these services have no panel)."""
    for result in tasks.pending():
        if result.task.module_path == send_notification.module_path:
            tasks.backend.results.remove(result)
            result.task.call(*result.args, **result.kwargs)


@pytest.fixture
def daily(tasks):
    """`daily(day, *options)`: manage.py billing_daily for that date at 00:30 UTC, then the worker's emails."""

    def run(day: date, *options: str) -> Ran:
        out, err, error = io.StringIO(), io.StringIO(), None
        with time_machine.travel(datetime.combine(day, time(0, 30), UTC), tick=False):
            try:
                call_command("billing_daily", "--date", day.isoformat(), *options, stdout=out, stderr=err)
            except CommandError as exc:
                error = str(exc)
            send_emails(tasks)
        return Ran(out.getvalue(), err.getvalue(), error)

    return run


def one_of_each(hosting):
    """On 2026-02-25: one to renew, one low-balance notice, one to suspend, one to delete (suspended since 2026-02-08)."""
    return {
        "renew": billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00"),
        "notice": billed(hosting, expires=utc(2026, 2, 28, 10), balance="4.00"),
        "suspend": billed(hosting, expires=utc(2026, 2, 20, 10)),
        "delete": billed(
            hosting,
            expires=utc(2026, 2, 5, 10),
            status=ServiceStatus.SUSPENDED,
            suspend_reason=SuspendReason.NONPAYMENT,
            suspended_at=utc(2026, 2, 8, 12),
        ),
    }


def changes():
    """What a run may change: charges, operations, notices, emails."""
    return (
        LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).count(),
        Operation.objects.count(),
        Notification.objects.count(),
        len(mail.outbox),
    )


def charges(service: Service) -> list[Decimal]:
    """The renewal charges of one service (their keys name it)."""
    return list(
        LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE, idempotency_key__startswith=f"service-{service.pk}-renewal-")
        .order_by("pk")
        .values_list("amount", flat=True)
    )


def test_a_dry_run_prints_and_records_what_it_would_do_and_changes_nothing(hosting, daily):
    s = one_of_each(hosting)

    ran = daily(FEB_25, "--dry-run")

    assert ran.error is None
    assert ran.out.splitlines() == [
        f"would delete after non-payment: service #{s['delete'].pk}",
        f"would suspend for non-payment: service #{s['suspend'].pk}",
        f"would renew: service #{s['renew'].pk} Would charge 10.00\xa0RUB.",
        f"would notice: service #{s['notice'].pk} Would send: Low balance.",
        "Billing run for 2026-02-25 (dry run: nothing was changed): renewed 1, notified 1, suspended 1, resumed 0, deleted 1, failed 0.",
    ]
    assert changes() == (0, 0, 0, 0)
    run = BillingRun.objects.get()
    assert (run.dry_run, run.status, run.renewed, run.notified, run.suspended, run.deleted) == (True, BillingRunStatus.DONE, 1, 1, 1, 1)
    assert set(run.items.values_list("service_id", "action", "outcome")) == {
        (s["renew"].pk, "renew", BillingOutcome.WOULD),
        (s["notice"].pk, "notice", BillingOutcome.WOULD),
        (s["suspend"].pk, "suspend", BillingOutcome.WOULD),
        (s["delete"].pk, "delete", BillingOutcome.WOULD),
    }
    for service in s.values():
        before = service.expires_at, service.status
        service.refresh_from_db()
        assert (service.expires_at, service.status) == before

    # The dry run does not hold the date: the real run does what the dry run listed.
    ran = daily(FEB_25)

    assert (ran.error, ran.out) == (
        None,
        "Billing run for 2026-02-25: renewed 1, notified 1, suspended 1, resumed 0, deleted 1, failed 0.\n",
    )
    assert changes() == (1, 2, 2, 2)  # a renewal; suspend and close queued; "renewed" and "low balance" sent
    # And a dry run after it finds nothing left.
    assert daily(FEB_25, "--dry-run").out.endswith("renewed 0, notified 0, suspended 0, resumed 0, deleted 0, failed 0.\n")


def test_a_dry_run_runs_while_the_real_run_of_the_date_holds_its_lease(hosting, daily):
    service = billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00")
    with time_machine.travel(utc(2026, 2, 25, 0, 30), tick=False):
        billing_run_start(day=FEB_25)  # a real run in progress elsewhere

    dry = daily(FEB_25, "--dry-run")
    real = daily(FEB_25)

    assert dry.error is None
    assert dry.out.splitlines()[0] == f"would renew: service #{service.pk} Would charge 10.00\xa0RUB."
    assert real.error is not None and real.error.startswith("A billing run for 2026-02-25 is in progress (")
    assert real.error.endswith("): nothing was done.")
    assert changes() == (0, 0, 0, 0)


def test_a_refused_step_fails_the_run_and_the_same_date_again_retries_it(hosting, daily):
    unpaid = billed(hosting, expires=utc(2026, 2, 20, 10))
    renewed = billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00")
    # New limits on their way to the panel: the suspension cannot be queued behind them.
    limits = OperationFactory(service=unpaid, action=PanelAction.SET_LIMITS, status=OperationStatus.QUEUED)

    first = daily(FEB_25)

    run = BillingRun.objects.get(day=FEB_25)
    assert first.error == f"1 step(s) failed, listed in the admin's billing run #{run.pk}. Run the date again to retry."
    assert first.err == (
        f"service #{unpaid.pk}, suspend for non-payment: Refused: Service #{unpaid.pk} already has an operation in progress: "
        "wait for it to finish.\n"
    )
    assert first.out == "Billing run for 2026-02-25: renewed 1, notified 0, suspended 0, resumed 0, deleted 0, failed 1.\n"
    assert (run.status, run.renewed, run.failed) == (BillingRunStatus.FAILED, 1, 1)
    assert not Operation.objects.filter(service=unpaid, action=PanelAction.SUSPEND).exists()

    Operation.objects.filter(pk=limits.pk).update(status=OperationStatus.DONE)  # the panel took the limits
    again = daily(FEB_25)

    assert (again.error, again.err) == (None, "")
    assert again.out == "Billing run for 2026-02-25: renewed 1, notified 0, suspended 1, resumed 0, deleted 0, failed 0.\n"
    run.refresh_from_db()
    assert (run.status, run.renewed, run.suspended, run.failed) == (BillingRunStatus.DONE, 1, 1, 0)
    assert run.items.get(service=unpaid).outcome == BillingOutcome.DONE
    assert Operation.objects.filter(service=unpaid, action=PanelAction.SUSPEND).count() == 1
    assert LedgerEntry.objects.filter(client=renewed.client, kind=LedgerEntryKind.CHARGE).count() == 1


@pytest.mark.parametrize("junk", ["2026-02-30", "tomorrow", "25.02.2026", ""])
def test_a_date_that_is_not_one_is_refused_before_anything_is_recorded(junk):
    with pytest.raises(CommandError) as refused:
        call_command("billing_daily", "--date", junk, stdout=io.StringIO())

    assert str(refused.value) == f"Error: argument --date: {junk!r} is not a date: write it as YYYY-MM-DD"
    assert not BillingRun.objects.exists()


def test_join_without_a_run_in_progress_is_refused(hosting, daily):
    billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00")

    before = daily(FEB_25, "--join")
    daily(FEB_25)
    after = daily(FEB_25, "--join")  # the date's run has finished

    message = "no billing run for 2026-02-25 is in progress: start one without --join"
    assert (before.error, after.error) == (message, message)
    assert BillingRun.objects.get().renewed == 1


def test_a_renewal_that_queues_the_resume_counts_as_resumed_like_its_dry_run(hosting, daily):
    """Suspended for non-payment since 2026-03-03, then money arrives by an adjustment (no renewal at once, unlike a top-up)."""
    service = billed(
        hosting,
        expires=utc(2026, 2, 28, 10),
        status=ServiceStatus.SUSPENDED,
        suspend_reason=SuspendReason.NONPAYMENT,
        suspended_at=utc(2026, 3, 3, 12),
    )
    ledger_entry_add(client=service.client, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("10.00"))

    dry = daily(date(2026, 3, 4), "--dry-run")
    real = daily(date(2026, 3, 4))

    summary = "renewed 1, notified 0, suspended 0, resumed 1, deleted 0, failed 0."
    assert dry.out.endswith(f"(dry run: nothing was changed): {summary}\n")
    assert Operation.objects.filter(service=service, action=PanelAction.RESUME).count() == 1
    assert list(Notification.objects.filter(service=service).values_list("kind", flat=True)) == [NotificationKind.RENEWED]
    assert real.out == f"Billing run for 2026-03-04: {summary}\n"


def test_a_balance_for_one_of_two_services_renews_the_earlier_however_many_processes_share_the_run(hosting, monkeypatch):
    client = ClientFactory()
    earlier = billed(hosting, client=client, expires=utc(2026, 2, 26, 10), balance="10.00")
    later = billed(hosting, client=client, expires=utc(2026, 2, 28, 10))
    # A helper that joined, then the run itself. Services are planned a chunk at a time in expiry order: chunks of
    # one stand for two services in different chunks of thousands.
    monkeypatch.setattr("billing.cycle.CHUNK", 1)
    with time_machine.travel(utc(2026, 2, 25, 0, 30), tick=False):
        run = billing_run_start(day=FEB_25)
        billing_run_process(run, joined=True)
        billing_run_process(run)
        billing_run_finish(run)

    # What one process does: the earlier expiry renewed, a low-balance notice for the later one.
    assert (charges(earlier), charges(later)) == ([Decimal("-10.00")], [])
    assert list(Notification.objects.filter(service=later).values_list("kind", flat=True)) == [NotificationKind.LOW_BALANCE]


def test_one_process_renews_the_earlier_of_two_services_a_balance_covers_one_of(hosting, daily):
    client = ClientFactory()
    earlier = billed(hosting, client=client, expires=utc(2026, 2, 26, 10), balance="10.00")
    later = billed(hosting, client=client, expires=utc(2026, 2, 28, 10))

    daily(FEB_25)

    assert (charges(earlier), charges(later)) == ([Decimal("-10.00")], [])
    assert list(Notification.objects.filter(service=later).values_list("kind", flat=True)) == [NotificationKind.LOW_BALANCE]
