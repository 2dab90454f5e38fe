"""How fast balances are with a large ledger: one client's balance and a page of clients with theirs.

Prints figures; asserts nothing. Uses a throwaway SQLite file, or DATABASE_URL when set
(then it needs an empty database it may fill).
"""

import os
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
workdir = tempfile.mkdtemp()
os.environ.setdefault("DATABASE_URL", f"sqlite:///{workdir}/bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from billing.choices import LedgerEntryKind  # noqa: E402
from billing.models import Client, LedgerEntry  # noqa: E402
from billing.selectors import client_balance, client_list_with_balance  # noqa: E402

CLIENTS, ENTRIES_PER_CLIENT = 2_000, 100


def timed(label, work, repeat=20):
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        for _ in range(repeat):
            work()
        elapsed = (time.perf_counter() - start) / repeat
    print(f"{label}: {elapsed * 1000:.2f} ms, {len(queries) // repeat} queries")


call_command("migrate", verbosity=0)
Client.objects.bulk_create(Client(name=f"Client {i}", email=f"c{i}@example.com") for i in range(CLIENTS))
clients = list(Client.objects.all())
for client in clients:
    LedgerEntry.objects.bulk_create(
        LedgerEntry(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("10.05")) for _ in range(ENTRIES_PER_CLIENT)
    )
print(f"{connection.vendor}: {CLIENTS} clients, {CLIENTS * ENTRIES_PER_CLIENT} ledger entries")

tracemalloc.start()
timed("one client's balance", lambda: client_balance(client=clients[CLIENTS // 2]))
timed("a page of 100 clients with balances", lambda: list(client_list_with_balance().order_by("name")[:100]))
print(f"peak memory: {tracemalloc.get_traced_memory()[1] / 1024:.0f} KiB")
