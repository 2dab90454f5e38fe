"""The daily billing run at a provider's scale: 100,000 services of 10,000 clients, 3,000 of them due on the run's date.

The due ones are mixed: 1,500 renewed from the balance, 500 low-balance and 250 "expires without renewal"
notices, 500 suspended and 250 deleted for non-payment; the other 97,000 expire later in the month. Each
client has ten ledger entries. Prints, measured in the same run, for a dry run, the run and the same date
run again (nothing left to do): the wall time, this process's CPU time, the time spent waiting for SQL
statements and for commits, and the number of SQL queries; the queries per due service; and the peak
Python memory of a dry run, which reads and plans the same services (tracemalloc slows what it traces,
so it watches a second dry run, not the timed ones). Emails and panel operations are only queued (the
dummy tasks backend of the tests' settings): nothing is sent.
Uses a throwaway SQLite file, or DATABASE_URL when set (then an empty database it may fill).
"""

import os
import sys
import tempfile
import time
import tracemalloc
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

from billing.choices import LedgerEntryKind, ServiceStatus, SuspendReason  # noqa: E402
from billing.cycle import billing_run  # noqa: E402
from billing.models import Client, LedgerEntry, Service, TariffPlan  # noqa: E402
from billing.periods import months_after  # noqa: E402
from provisioning.models import DataCenter, ProcessingModule  # noqa: E402

CLIENTS, SERVICES_PER_CLIENT, ENTRIES_PER_CLIENT = 10_000, 10, 10
DAY = date(2026, 3, 10)
PRICE = Decimal("10.00")
# What is due on DAY (default settings: renew 3 days before the expiry, notices 7, 3 and 1 days before, suspend
# 3 days after, delete 14 days after the suspension): how many, the expiry's days from DAY, the client's balance.
DUE = {
    "renew": (1_500, 3, Decimal("100.00")),
    "low balance": (500, 7, Decimal("4.00")),
    "expires, auto-renew off": (250, 7, Decimal("100.00")),
    "suspend": (500, -5, Decimal("0")),
    "delete": (250, -25, Decimal("0")),
}


def at(days: int) -> datetime:
    """10:00 in the billing time zone, `days` after DAY."""
    return datetime.combine(DAY + timedelta(days=days), datetime.min.time(), ZoneInfo(settings.TIME_ZONE)).replace(hour=10)


def service(client: Client, tariff: TariffPlan, expires: datetime, **fields) -> Service:
    fields = {"status": ServiceStatus.ACTIVE, "auto_renew": True} | fields
    anchor = months_after(expires, -1)
    return Service(client=client, tariff=tariff, price=PRICE, period_anchor=anchor, expires_at=expires, paid_at=anchor, **fields)


def setup() -> int:
    """The clients, their ledgers and services; the number of services due on DAY."""
    module = ProcessingModule.objects.create(
        product_type="vhost", name="bench", url="http://127.0.0.1:9/ispmgr", username="root", password="x",
        data_center=DataCenter.objects.create(name="bench"),
    )  # fmt: skip
    tariff = TariffPlan.objects.create(name="bench", product_type="vhost", processing_module=module, account_template="t")
    Client.objects.bulk_create((Client(name=f"Client {i}", email=f"c{i}@example.com") for i in range(CLIENTS)), batch_size=2000)
    clients = list(Client.objects.order_by("pk"))
    # Client i < 3,000 has the one due service of its case; everyone else's services expire 8 to 37 days after DAY.
    due, balances = [], {}
    for name, (count, days, balance) in DUE.items():
        for _ in range(count):
            client = clients[len(due)]
            fields = {}
            if name == "expires, auto-renew off":
                fields = {"auto_renew": False}
            elif name == "delete":
                fields = {"status": ServiceStatus.SUSPENDED, "suspend_reason": SuspendReason.NONPAYMENT, "suspended_at": at(-20)}
            due.append(service(client, tariff, at(days), **fields))
            balances[client.pk] = balance
    later = (
        service(clients[i % CLIENTS], tariff, at(8 + i % 30))
        for i in range(len(due), CLIENTS * SERVICES_PER_CLIENT)  # the first ones go to the clients after the due ones'
    )
    Service.objects.bulk_create(due, batch_size=2000)
    Service.objects.bulk_create(later, batch_size=2000)

    def ledger(client):
        # A top-up, then charges that leave the client its balance.
        spent = Decimal("15.00") * (ENTRIES_PER_CLIENT - 1)
        yield LedgerEntry(client=client, kind=LedgerEntryKind.TOPUP, amount=spent + balances.get(client.pk, Decimal("100.00")))
        for _ in range(ENTRIES_PER_CLIENT - 1):
            yield LedgerEntry(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("-15.00"))

    LedgerEntry.objects.bulk_create((entry for client in clients for entry in ledger(client)), batch_size=5000)
    return len(due)


class Measured:
    """What `work()` took: wall time, this process's CPU time, the SQL statements sent and the time spent waiting for
    them, and for commits; what is left of the wall time is Python and other processes on the same cores."""

    def __init__(self, work):
        self.count, self.sql, self.commits = 0, 0.0, 0.0
        database = connections["default"]
        database.commit = self._timed_commit(database.commit)
        try:
            with connection.execute_wrapper(self._execute):
                wall, cpu = time.perf_counter(), time.process_time()
                self.result = work()
                self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            del database.commit

    def _execute(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.count += 1
            self.sql += time.perf_counter() - start

    def _timed_commit(self, commit):
        def timed_commit():
            start = time.perf_counter()
            try:
                commit()
            finally:
                self.commits += time.perf_counter() - start

        return timed_commit

    def line(self, label: str) -> str:
        run = self.result
        return (
            f"  {label:<20} {self.wall:7.2f} s (CPU {self.cpu:5.1f} s, SQL {self.sql:5.1f} s, commits {self.commits:4.1f} s)  "
            f"{self.count:6,} SQL queries  (renewed {run.renewed}, notified {run.notified}, suspended {run.suspended}, "
            f"deleted {run.deleted}, failed {run.failed})"
        )


call_command("migrate", verbosity=0)
start = time.perf_counter()
due = setup()
print(
    f"{Service.objects.count():,} services of {CLIENTS:,} clients, {LedgerEntry.objects.count():,} ledger entries, "
    f"{due:,} due on {DAY} ({connection.vendor}; set up in {time.perf_counter() - start:.0f} s):"
)
dry = Measured(lambda: billing_run(day=DAY, dry_run=True))
tracemalloc.start()
billing_run(day=DAY, dry_run=True)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
real = Measured(lambda: billing_run(day=DAY))
again = Measured(lambda: billing_run(day=DAY))
print(dry.line("dry run"))
print(f"  peak Python memory of a dry run: {peak / 2**20:.1f} MiB")
print(real.line("run"))
print(f"  {real.count / due:.1f} SQL queries per due service")
print(again.line("the same date again"))
print(f"  load average (1, 5, 15 min) at the end: {', '.join(f'{load:.1f}' for load in os.getloadavg())}")
