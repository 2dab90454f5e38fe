"""The daily run as real processes on PostgreSQL: `manage.py billing_daily` started side by side, killed, joined.

Each process is `manage.py billing_daily` against the test database (committed rows: transactional tests).
The test holds row locks from a connection of its own to stop a run where it wants it: the run skips a
locked service (SKIP LOCKED) and comes back for it at the end, waiting for the lock.
"""

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from billing.choices import BillingOutcome, BillingRunStatus, LedgerEntryKind, NotificationKind, PanelAction, ServiceStatus, SuspendReason
from billing.models import BillingRun, Client, LedgerEntry, Notification, Service
from billing.selectors import client_balance
from provisioning.models import Operation
from tests.conftest import postgres_only
from tests.cycle.conftest import utc
from tests.cycle.test_run_safety import billed, charges, hosting  # noqa: F401 (fixture)
from tests.factories import ClientFactory

pytestmark = [postgres_only(), pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
FEB_25 = date(2026, 2, 25)


@pytest.fixture
def start():
    """`start(*options, **env)`: `manage.py billing_daily *options` in a process of its own against the test database,
    `env` adding settings; one still running when the test ends is killed."""
    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    environment = {key: value for key, value in os.environ.items() if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    environment |= {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TIME_ZONE": "UTC",
    }
    started = []

    def run(*options: str, **env: str) -> subprocess.Popen:
        process = subprocess.Popen(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", "billing_daily", *options],
            cwd=ROOT,
            env=environment | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def finished(process: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def waiting_for_a_lock() -> int:
    """How many connections to the test database wait for a row lock now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


@contextmanager
def row_held(instance):
    """`instance`'s row locked FOR UPDATE by another connection until the block ends."""
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"SELECT 1 FROM {instance._meta.db_table} WHERE id = %s FOR UPDATE", [instance.pk])  # noqa: S608 - a model's table
            yield
            cursor.execute("ROLLBACK")
    finally:
        other.close()


SUMMARY = "Billing run for 2026-02-25: renewed {}, notified {}, suspended {}, resumed {}, deleted {}, failed {}.\n"


def test_example_3_two_processes_started_together_renew_each_service_once(hosting, start):  # noqa: F811
    services = [billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00") for _ in range(50)]

    with row_held(services[20]):  # the run that starts comes back for it at the end, and waits there
        processes = [start("--date", "2026-02-25"), start("--date", "2026-02-25")]
        wait_until(lambda: any(process.poll() is not None for process in processes), "one process to give up")
        refused = next(process for process in processes if process.poll() is not None)
        running = next(process for process in processes if process is not refused)
        assert running.poll() is None, "the run waits for the held service"
        code, out, err = finished(refused)
        assert (code, out) == (1, "")
        assert err.startswith("CommandError: A billing run for 2026-02-25 is in progress (")
        assert err.endswith("): nothing was done.\n")
    assert finished(running) == (0, SUMMARY.format(50, 0, 0, 0, 0, 0), "")

    again = finished(start("--date", "2026-02-25"))

    assert again == (0, SUMMARY.format(50, 0, 0, 0, 0, 0), "")
    assert [charges(service) for service in services] == [[Decimal("-10.00")]] * 50
    assert {client_balance(client=service.client) for service in services} == {Decimal("15.00")}
    run = BillingRun.objects.get(day=FEB_25, dry_run=False)
    assert (run.status, run.renewed, run.notified, run.suspended, run.deleted, run.failed) == (BillingRunStatus.DONE, 50, 0, 0, 0, 0)
    assert Notification.objects.filter(kind=NotificationKind.RENEWED).count() == 50


def test_example_4_a_run_killed_midway_is_finished_by_the_next_once_its_lease_ran_out(hosting, start):  # noqa: F811
    s2, s3, s4 = (billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00") for _ in range(3))

    with row_held(s3):
        # A short lease: the date can be run again soon after the process died.
        process = start("--date", "2026-02-25", BILLING_RUN_LEASE_SECONDS="2")
        wait_until(lambda: waiting_for_a_lock() == 1, "the run to wait for S3")
        # It renewed S2 and S4, skipping S3, and came back for S3.
        assert [charges(s) for s in (s2, s3, s4)] == [[Decimal("-10.00")], [], [Decimal("-10.00")]]
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
    run = BillingRun.objects.get(day=FEB_25, dry_run=False)
    assert run.status == BillingRunStatus.RUNNING
    assert sorted(run.items.values_list("service_id", "outcome")) == [(s2.pk, BillingOutcome.DONE), (s4.pk, BillingOutcome.DONE)]
    wait_until(lambda: BillingRun.objects.filter(pk=run.pk, lease_until__lt=timezone.now()).exists(), "the lease to run out", 10)

    again = finished(start("--date", "2026-02-25"))

    assert again == (0, SUMMARY.format(3, 0, 0, 0, 0, 0), "")
    assert [charges(s) for s in (s2, s3, s4)] == [[Decimal("-10.00")]] * 3
    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).count() == 3
    for service in (s2, s3, s4):
        service.refresh_from_db()
        assert service.expires_at == utc(2026, 3, 28, 10)
    run.refresh_from_db()
    assert (run.status, run.renewed) == (BillingRunStatus.DONE, 3)


# A database error nobody planned for: PostgreSQL's lock_timeout (operators set one) running out in one service.
LOCK_TIMEOUT = {"PGOPTIONS": "-c lock_timeout=1500"}


def test_a_database_error_in_one_service_fails_it_alone_and_the_next_run_does_it(hosting, start):  # noqa: F811
    first, second, third = (billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00") for _ in range(3))

    with row_held(first.client):  # the first renewal waits for the client's ledger longer than the lock timeout
        code, out, err = finished(start("--date", "2026-02-25", **LOCK_TIMEOUT))

    run = BillingRun.objects.get(day=FEB_25, dry_run=False)
    assert (code, out) == (1, SUMMARY.format(2, 0, 0, 0, 0, 1))
    assert f"\nservice #{first.pk}, renew: OperationalError: canceling statement due to lock timeout\n" in err
    assert err.endswith(f"CommandError: 1 step(s) failed, listed in the admin's billing run #{run.pk}. Run the date again to retry.\n")
    assert [charges(s) for s in (first, second, third)] == [[], [Decimal("-10.00")], [Decimal("-10.00")]]
    assert (run.status, run.renewed, run.failed) == (BillingRunStatus.FAILED, 2, 1)

    again = finished(start("--date", "2026-02-25"))

    assert again == (0, SUMMARY.format(3, 0, 0, 0, 0, 0), "")
    assert [charges(s) for s in (first, second, third)] == [[Decimal("-10.00")]] * 3


def test_a_lock_timeout_on_the_service_row_itself_fails_that_service_alone(hosting, start):  # noqa: F811
    first, second = (billed(hosting, expires=utc(2026, 2, 28, 10), balance="25.00") for _ in range(2))

    with row_held(first):
        with row_held(second):
            process = start("--date", "2026-02-25", **LOCK_TIMEOUT)
            wait_until(lambda: waiting_for_a_lock() == 1, "the run to come back for the first service")
        code, out, _ = finished(process)  # the second is let go while the run waits for the first

    assert (code, out) == (1, SUMMARY.format(1, 0, 0, 0, 0, 1))
    assert [charges(s) for s in (first, second)] == [[], [Decimal("-10.00")]]


# Many workers: ~200 services of every case on 2026-02-25, run by one process or shared by four.
# Each case: how many services, what they are, and what the run leaves on each, worked out from the dates by hand
# (10.00 a month; renew 3 days before the expiry, notices 7, 3 and 1 days before, suspend 3 days after, delete 14 days
# after the suspension): (expiry after the run, renewal charges, operations queued, notices, the client's balance).
NONPAYMENT = {"status": ServiceStatus.SUSPENDED, "suspend_reason": SuspendReason.NONPAYMENT}
CASES = {
    # Expires first: the run starts with it, and waits there while the test holds its client's row.
    "renew, long overdue": (1, {"expires": utc(2026, 2, 1, 10), "balance": "25.00"}, ("2026-03-01", 1, (), ("renewed",), "15.00")),
    "renew": (40, {"expires": utc(2026, 2, 28, 10), "balance": "25.00"}, ("2026-03-28", 1, (), ("renewed",), "15.00")),
    # Ten clients with two services each (below): both renewed from one balance of 25.00.
    "renew, two of a client, 26th": (10, {"expires": utc(2026, 2, 26, 10)}, ("2026-03-26", 1, (), ("renewed",), "5.00")),
    "renew, two of a client, 28th": (10, {"expires": utc(2026, 2, 28, 10)}, ("2026-03-28", 1, (), ("renewed",), "5.00")),
    "low balance, 7 days": (10, {"expires": utc(2026, 3, 4, 10), "balance": "4.00"}, ("2026-03-04", 0, (), ("low_balance",), "4.00")),
    "low balance, 3 days": (10, {"expires": utc(2026, 2, 28, 10), "balance": "4.00"}, ("2026-02-28", 0, (), ("low_balance",), "4.00")),
    "low balance, 1 day": (10, {"expires": utc(2026, 2, 26, 10), "balance": "4.00"}, ("2026-02-26", 0, (), ("low_balance",), "4.00")),
    "expires, auto-renew off": (
        10,
        {"expires": utc(2026, 3, 4, 10), "balance": "100.00", "auto_renew": False},
        ("2026-03-04", 0, (), ("expires",), "100.00"),
    ),
    "suspend, 5 days overdue": (15, {"expires": utc(2026, 2, 20, 10)}, ("2026-02-20", 0, ("suspend",), (), "0.00")),
    "suspend, 3 days overdue": (15, {"expires": utc(2026, 2, 22, 10)}, ("2026-02-22", 0, ("suspend",), (), "0.00")),
    "delete, 17 days suspended": (
        10,
        {"expires": utc(2026, 2, 5, 10), "suspended_at": utc(2026, 2, 8, 12), **NONPAYMENT},
        ("2026-02-05", 0, ("close",), (), "0.00"),
    ),
    "delete, 14 days suspended": (
        10,
        {"expires": utc(2026, 2, 5, 10), "suspended_at": utc(2026, 2, 11, 9), **NONPAYMENT},
        ("2026-02-05", 0, ("close",), (), "0.00"),
    ),
    "not yet deleted, 13 days suspended": (
        10,
        {"expires": utc(2026, 2, 5, 10), "suspended_at": utc(2026, 2, 12, 9), **NONPAYMENT},
        ("2026-02-05", 0, (), (), "0.00"),
    ),
    "no notice 6 days before": (10, {"expires": utc(2026, 3, 3, 10), "balance": "4.00"}, ("2026-03-03", 0, (), (), "4.00")),
    "not due": (10, {"expires": utc(2026, 4, 15, 10)}, ("2026-04-15", 0, (), (), "0.00")),
    "suspended for abuse": (
        10,
        {"expires": utc(2026, 2, 20, 10), "balance": "50.00", "status": ServiceStatus.SUSPENDED, "suspend_reason": SuspendReason.ABUSE},
        ("2026-02-20", 0, (), (), "50.00"),
    ),
}


def build_cases(tariff) -> dict[int, str]:
    """The services of CASES: {service id: its case}."""
    cases = {}
    for name, (count, fields, _expected) in CASES.items():
        if name.startswith("renew, two of a client"):
            continue
        for _ in range(count):
            cases[billed(tariff, **fields).pk] = name
    for _ in range(10):
        client = ClientFactory()
        for name in ("renew, two of a client, 26th", "renew, two of a client, 28th"):
            service = billed(tariff, client=client, balance="25.00" if name.endswith("26th") else "0.00", **CASES[name][1])
            cases[service.pk] = name
    return cases


def outcome(cases: dict[int, str]) -> dict[str, Counter]:
    """For each case, how many of its services ended how (as CASES writes it)."""
    balances = {client.pk: client_balance(client=client) for client in Client.objects.all()}
    operations = defaultdict(list)
    for service_id, action in Operation.objects.values_list("service_id", "action"):
        operations[service_id].append(action)
    ended = {name: Counter() for name in CASES}
    for service in Service.objects.filter(pk__in=cases):
        ended[cases[service.pk]][
            (
                service.expires_at.date().isoformat(),
                len(charges(service)),
                tuple(sorted(operations[service.pk])),
                tuple(sorted(Notification.objects.filter(service=service).values_list("kind", flat=True))),
                str(balances[service.client_id]),
            )
        ] += 1
    return ended


@pytest.mark.parametrize("joiners", [0, 3], ids=["one process", "four processes"])
def test_a_run_shared_by_four_processes_ends_as_one_process_ends_it(hosting, start, joiners):  # noqa: F811
    cases = build_cases(hosting)
    assert len(cases) == 191
    first = Service.objects.filter(pk__in=[pk for pk, name in cases.items() if name == "renew, long overdue"]).get()

    with row_held(first.client):
        run = start("--date", "2026-02-25")
        wait_until(lambda: waiting_for_a_lock() == 1, "the run to wait for the first service's client")
        helpers = [start("--date", "2026-02-25", "--join") for _ in range(joiners)]
        for helper in helpers:
            assert finished(helper) == (0, "Helped the billing run for 2026-02-25; it reports the counts when it finishes.\n", "")
        if helpers:  # they did everything the run did not hold
            assert LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).count() == 60
            assert Operation.objects.count() == 50
    code, out, err = finished(run)

    assert (code, out, err) == (0, SUMMARY.format(61, 40, 30, 0, 20, 0), "")
    assert outcome(cases) == {name: Counter({expected: count}) for name, (count, _fields, expected) in CASES.items()}
    assert LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).count() == 61
    assert Counter(Operation.objects.values_list("action", flat=True)) == Counter({PanelAction.SUSPEND: 30, PanelAction.CLOSE: 20})
    assert {op.payload.get("suspend_reason") for op in Operation.objects.filter(action=PanelAction.SUSPEND)} == {SuspendReason.NONPAYMENT}
    assert set(Notification.objects.exclude(kind=NotificationKind.RENEWED).values_list("day", flat=True)) == {FEB_25}
    finished_run = BillingRun.objects.get(day=FEB_25, dry_run=False)
    assert (finished_run.status, finished_run.items.filter(outcome=BillingOutcome.DONE).count()) == (BillingRunStatus.DONE, 151)
