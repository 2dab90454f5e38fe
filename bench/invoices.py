"""Invoices at scale: 10,000 charges finalized with their numbered invoices, then 1,000 invoice PDFs rendered.

Each charge goes the way every charge goes (ledger_entry_add: the client's lock, the balance, the draft, a number
from the locked counter row, the invoice, its line, the entry) for 100 clients in turn, so the counter row is the
one every invoice takes. Prints the time per invoice and the SQL queries per invoice for the first and the last
500 (the same: numbering does not slow down as the year fills), then per PDF the time and the process's peak
memory (resident set: WeasyPrint's pango is C, which tracemalloc does not see) and Python's own peak.
Uses a throwaway SQLite file, or DATABASE_URL when set (then an empty database it may fill).
BENCH_INVOICES and BENCH_PDFS change the counts.
"""

import logging
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils.translation import gettext_noop  # noqa: E402

from billing.choices import DocumentKind, LedgerEntryKind  # noqa: E402
from billing.documents import Line  # noqa: E402
from billing.models import Client, Document, LedgerEntry  # noqa: E402
from billing.services import ledger_entry_add  # noqa: E402
from billing.stored_text import StoredText  # noqa: E402

INVOICES = int(os.environ.get("BENCH_INVOICES", 10_000))
PDFS = int(os.environ.get("BENCH_PDFS", 1_000))
CLIENTS = 100
# WeasyPrint reports each rendering step at INFO; the figures are the output here.
logging.getLogger("weasyprint").setLevel(logging.WARNING)
logging.getLogger("fontTools").setLevel(logging.WARNING)
BATCH = 500


def charge(client: Client, i: int) -> None:
    line = Line(StoredText(gettext_noop("Service #%(id)d, renewal until %(until)s"), {"id": i, "until": "2026-04-01"}), Decimal("10.00"))
    ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal("10.00"), reference=line.description, lines=[line])


class Counted:
    """Counts the SQL statements run through the connection (Django's query log keeps only the last 9,000)."""

    statements = 0

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        return execute(sql, params, many, context)


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


call_command("migrate", verbosity=0)
Client.objects.bulk_create(Client(name=f"Client {i}", email=f"c{i}@example.com", address=f"{i} Main Street") for i in range(CLIENTS))
clients = list(Client.objects.all())
LedgerEntry.objects.bulk_create(LedgerEntry(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("1000000.00")) for client in clients)
print(f"{connection.vendor}: {INVOICES} invoices for {CLIENTS} clients, then {PDFS} PDFs")

batches = []
start = time.perf_counter()
for first in range(0, INVOICES, BATCH):
    counted = Counted()
    with connection.execute_wrapper(counted):
        began = time.perf_counter()
        for i in range(first, min(first + BATCH, INVOICES)):
            charge(clients[i % CLIENTS], i)
        batches.append((time.perf_counter() - began, counted.statements, min(BATCH, INVOICES - first)))
total = time.perf_counter() - start
numbers = list(Document.objects.filter(kind=DocumentKind.INVOICE).values_list("sequence_number", flat=True))
assert sorted(numbers) == list(range(1, INVOICES + 1)), "numbers are gapless and distinct"
for label, (elapsed, queries, count) in (("first", batches[0]), ("last", batches[-1])):
    print(f"invoices, {label} {count}: {elapsed / count * 1000:.2f} ms and {queries / count:g} queries per invoice")
print(f"invoices, all {INVOICES}: {total:.1f} s")

try:
    from billing.pdf import document_pdf
except ImportError:
    document_pdf = None
    print("PDFs: skipped (billing.pdf or WeasyPrint is not installed)")
if document_pdf is not None and PDFS:
    documents = list(Document.objects.filter(kind=DocumentKind.INVOICE).order_by("pk")[:PDFS])
    document_pdf(documents[0])  # fonts and pango loaded once, as in a long-running worker
    before = rss_mib()
    start = time.perf_counter()
    size = sum(len(document_pdf(document)) for document in documents)
    elapsed = time.perf_counter() - start
    each = elapsed / len(documents) * 1000
    print(f"PDFs: {each:.1f} ms per PDF ({len(documents)} in {elapsed:.1f} s), {size / len(documents) / 1024:.0f} KiB each")
    print(f"PDFs: peak resident memory {rss_mib():.0f} MiB ({before:.0f} MiB after the first PDF)")
    tracemalloc.start()
    for document in documents[:50]:
        document_pdf(document)
    print(f"PDFs: Python's peak while rendering 50 more: {tracemalloc.get_traced_memory()[1] / 1024 / 1024:.1f} MiB")
