"""Example 6: invoice numbers gapless per series and year, in the billing time zone, also across real processes.

The concurrent cases start `python` processes of their own against the PostgreSQL test database (committed rows:
transactional tests), each renewing a service when the test lets them all go at once.
"""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
import time_machine
from django.db import connection, transaction

from billing.choices import DocumentKind, LedgerEntryKind, ServiceStatus
from billing.models import Document, DocumentSequence, LedgerEntry
from billing.services import ledger_entry_add, service_renew
from tests.conftest import postgres_only
from tests.factories import ClientFactory, ServiceFactory

ROOT = Path(__file__).resolve().parents[2]


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(autouse=True)
def billing_in_utc(settings):
    settings.TIME_ZONE = "UTC"


FEB_28 = utc(2026, 2, 28, 10)


def service(balance="100.00", expires=FEB_28):
    """A running service of 10.00 a month, its own client holding `balance` (the top-up's receipt is another series).

    The money goes in before the service exists: a top-up renews an overdue service at once (money_arrived).
    """
    client = ClientFactory()
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    fields = {"status": ServiceStatus.ACTIVE, "period_anchor": utc(2026, 1, 31, 10), "expires_at": expires}
    return ServiceFactory(client=client, price=Decimal("10.00"), **fields)


def invoices():
    return list(Document.objects.filter(kind=DocumentKind.INVOICE).order_by("sequence_number").values_list("number", flat=True))


class Failed(Exception):
    pass


@pytest.mark.django_db
def test_the_first_invoice_of_2026_is_inv_2026_00001():
    with time_machine.travel(utc(2026, 1, 1, 0, 0, 1), tick=False):
        service_renew(service=service())
        service_renew(service=service())

    assert invoices() == ["INV-2026-00001", "INV-2026-00002"]


@pytest.mark.django_db
def test_a_renewal_whose_transaction_fails_after_taking_a_number_leaves_no_hole():
    first, second = service(), service()

    with time_machine.travel(utc(2026, 3, 2, 9), tick=False):
        with pytest.raises(Failed), transaction.atomic():
            service_renew(service=first)
            assert invoices() == ["INV-2026-00001"]  # the number was taken...
            raise Failed  # ...and the transaction dies after it
        assert not LedgerEntry.objects.filter(kind=LedgerEntryKind.CHARGE).exists()
        service_renew(service=second)
        service_renew(service=first)

    assert list(Document.objects.filter(kind=DocumentKind.INVOICE).values_list("number", "service")) == [
        ("INV-2026-00002", first.pk),
        ("INV-2026-00001", second.pk),
    ]


@pytest.mark.django_db
def test_the_first_invoice_finalized_at_2027_01_01_00_05_utc_is_inv_2027_00001():
    with time_machine.travel(utc(2026, 12, 31, 23, 55), tick=False):
        service_renew(service=service())
        service_renew(service=service())
    with time_machine.travel(utc(2027, 1, 1, 0, 5), tick=False):
        service_renew(service=service())

    assert sorted(invoices()) == ["INV-2026-00001", "INV-2026-00002", "INV-2027-00001"]
    assert Document.objects.get(kind=DocumentKind.INVOICE, year=2027).number == "INV-2027-00001"
    assert dict(DocumentSequence.objects.filter(series="INV").values_list("year", "next_number")) == {2026: 3, 2027: 2}


@pytest.mark.django_db
def test_the_year_is_the_billing_time_zones(settings):
    settings.TIME_ZONE = "Asia/Vladivostok"  # UTC+10: 2026-12-31 15:00 UTC is already 2027 there

    with time_machine.travel(utc(2026, 12, 31, 15), tick=False):
        service_renew(service=service())

    assert invoices() == ["INV-2027-00001"]


# A process of its own: waits until the file `go` exists, then renews the service in 2026 (and with HOLD, keeps its
# transaction open after the number was taken, telling the test so on its output, until it is killed).
RENEW = """
import os, sys, time
import django
django.setup()
import time_machine
from datetime import UTC, datetime
from django.db import transaction
from billing.models import Service
from billing.services import service_renew
pk, go = int(sys.argv[1]), sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.02)
with time_machine.travel(datetime(2026, 3, 2, 9, tzinfo=UTC), tick=True), transaction.atomic():
    service_renew(service=Service.objects.get(pk=pk))
    if os.environ.get("HOLD"):
        print("taken", flush=True)
        time.sleep(120)
"""


@pytest.fixture
def renew_in_process(tmp_path):
    """`renew_in_process(service, **env)`: a process renewing the service once `go()` is called; killed if still running at the end."""
    db = connection.settings_dict
    credentials = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    environment = {key: value for key, value in os.environ.items() if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}}
    environment |= {
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}",
        "TIME_ZONE": "UTC",
    }
    go = tmp_path / "go"
    started = []

    def start(made, **env) -> subprocess.Popen:
        process = subprocess.Popen(  # noqa: S603 - our own code
            [sys.executable, "-c", RENEW, str(made.pk), str(go)],
            cwd=ROOT,
            env=environment | env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    start.go = go.touch
    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


def wait_until(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_50_renewals_in_50_processes_at_once_get_00001_to_00050(renew_in_process):
    services = [service() for _ in range(50)]
    processes = [renew_in_process(made) for made in services]

    renew_in_process.go()

    for process in processes:
        _out, err = process.communicate(timeout=180)
        assert (process.returncode, err) == (0, "")
    assert invoices() == [f"INV-2026-{n:05d}" for n in range(1, 51)]
    assert set(Document.objects.filter(kind=DocumentKind.INVOICE).values_list("service", flat=True)) == {s.pk for s in services}
    assert DocumentSequence.objects.get(series="INV", year=2026).next_number == 51


@postgres_only()
@pytest.mark.django_db(transaction=True)
def test_a_renewal_killed_after_taking_a_number_leaves_no_hole_and_the_next_one_waits_for_it(renew_in_process):
    first, second = service(), service()
    DocumentSequence.objects.create(series="INV", year=2026)  # both processes then wait on the same row
    holder = renew_in_process(first, HOLD="1")
    renew_in_process.go()
    assert holder.stdout.readline() == "taken\n"
    waiter = renew_in_process(second)
    wait_until(lambda: waiting_for_a_lock() == 1, "the second renewal to wait for the numbering row")
    assert waiter.poll() is None

    holder.send_signal(signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL
    _out, err = waiter.communicate(timeout=60)

    assert (waiter.returncode, err) == (0, "")
    assert list(Document.objects.filter(kind=DocumentKind.INVOICE).values_list("number", "service")) == [("INV-2026-00001", second.pk)]
    assert DocumentSequence.objects.get(series="INV", year=2026).next_number == 2
