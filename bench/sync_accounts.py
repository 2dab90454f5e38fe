"""sync_accounts at a provider's scale: 20,000 ISPmanager users and as many live services, with a few hundred differences.

Prints, measured in the same run: the time of downloading and parsing the user list, of a list-only
run, of a full dry run (every account's form read, with 1 and with SYNC_ACCOUNTS_READERS threads) and
of a run that applies (queues the fixes), each with its SQL queries and the CPU time of billing's own
process. The emulator runs in a process of its own, as a panel would, on loopback: a real panel's form
takes longer, which the threads are for. Run at two sizes with the same differences to show that the
queries do not grow with the number of accounts.
Uses a throwaway SQLite file, or DATABASE_URL when set (then an empty database it may fill).
"""

import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from billing.choices import ResourceKind, ServiceStatus  # noqa: E402
from billing.models import Client, Service, ServiceResource, TariffPlan  # noqa: E402
from provisioning.accounts_sync import sync_accounts_run  # noqa: E402
from provisioning.coremanager.emulator import EmulatorServer  # noqa: E402
from provisioning.ispmanager.emulator import ISPmanagerEmulator  # noqa: E402
from provisioning.models import DataCenter, Operation, ProcessingModule  # noqa: E402

TEMPLATE = {"limit_db": "25", "limit_webdomains": "25", "limit_quota": "10240"}
AGREED = TEMPLATE | {"limit_db": "10"}
# The same differences at every size: 40 suspended in the panel only, 40 active there only, 80 with
# other limits, 20 accounts missing, 20 orphans, 10 someone else's.
STOPPED, STARTED, LIMITED, MISSING, ORPHANS, FOREIGN = 40, 40, 80, 20, 20, 10


def setup(name: str, total: int, url: str) -> tuple[ProcessingModule, dict]:
    """A module `name`, its services in billing and the panel's users (returned) with the differences above."""
    module = ProcessingModule.objects.create(
        product_type="vhost", name=name, url=url, username="root", password="secret",
        data_center=DataCenter.objects.get_or_create(name="bench")[0],
    )  # fmt: skip
    tariff = TariffPlan.objects.create(name=name, product_type="vhost", processing_module=module, account_template="bench")
    client = Client.objects.create(name=name, email=f"{name.replace(' ', '-')}@example.com")
    suspended = range(STOPPED, STOPPED + STARTED)  # in billing; the first STOPPED are suspended in the panel only
    services = Service.objects.bulk_create(
        (
            Service(client=client, tariff=tariff, domain=f"s{i}.example.com", panel_username=f"b{total}u{i}",
                    status=ServiceStatus.SUSPENDED if i in suspended else ServiceStatus.ACTIVE)
            for i in range(total)
        ),
        batch_size=2000,
    )  # fmt: skip
    ServiceResource.objects.bulk_create(
        (ServiceResource(service=service, kind=ResourceKind.DATABASES, quantity=10) for service in services), batch_size=2000
    )
    users = {}
    for i, service in enumerate(services):
        limits = dict(AGREED)
        if STOPPED + STARTED <= i < STOPPED + STARTED + LIMITED:
            limits["limit_db"] = "3"
        users[service.panel_username] = {
            "name": service.panel_username, "password": "pw", "fullname": f"Service #{service.pk}", "preset": "bench",
            "owner": "root", "active": i >= STOPPED, "limits": limits, "domain": "",
        }  # fmt: skip
    start = STOPPED + STARTED + LIMITED
    for service in services[start : start + MISSING]:
        del users[service.panel_username]
    for service in services[start + MISSING : start + MISSING + FOREIGN]:
        users[service.panel_username]["fullname"] = "someone else"
    for number in range(ORPHANS):
        users[f"b{total}gone{number}"] = users[services[-1].panel_username] | {
            "name": f"b{total}gone{number}", "fullname": f"Service #{10**9 + number}",
        }  # fmt: skip
    return module, users


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(users: dict, port: int, ready) -> None:
    """The emulator's process: the panel with these users, until it is terminated."""
    app = ISPmanagerEmulator(admins={"root": "secret"})
    app.add_preset("bench", **TEMPLATE)
    app.users.update(users)
    with EmulatorServer(app, port=port):
        ready.set()
        threading.Event().wait()


def timed(work):
    with CaptureQueriesContext(connection) as queries:
        start, cpu = time.perf_counter(), time.process_time()
        result = work()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return result, f"{elapsed:7.2f} s  (billing's CPU {cpu:6.2f} s)  {len(queries):3d} SQL queries"


class Panel:
    """The emulator in a process of its own, serving `users` until the block ends."""

    def __init__(self, users: dict, port: int):
        self.url = f"http://127.0.0.1:{port}/ispmgr"
        fork = multiprocessing.get_context("fork")
        self._ready = fork.Event()
        self._process = fork.Process(target=serve, args=(users, port, self._ready), daemon=True)

    def __enter__(self):
        connection.close()  # not shared with the emulator's process
        self._process.start()
        self._ready.wait(timeout=60)
        return self

    def __exit__(self, *exc):
        self._process.terminate()

    def slow(self, seconds: float) -> None:
        """Every reply waits this long first (while others are served), as a real panel's work would."""
        requests.post(self.url.replace("/ispmgr", "/_control"), data={"slow": str(seconds)}, timeout=10).raise_for_status()


def measure(total: int) -> None:
    port = free_port()
    module, users = setup(f"bench {total}", total, f"http://127.0.0.1:{port}/ispmgr")
    with Panel(users, port):
        download = timed(module.get_backend().client.users)[1]
        quick, quick_figures = timed(lambda: sync_accounts_run(module=module, list_only=True))
        _, one_figures = timed(lambda: sync_accounts_run(module=module, readers=1))
        dry, dry_figures = timed(lambda: sync_accounts_run(module=module))
        full, full_figures = timed(lambda: sync_accounts_run(module=module, dry_run=False))
    Operation.objects.filter(service__tariff__processing_module=module).delete()  # queued, never run: leave the next size alone
    readers = settings.SYNC_ACCOUNTS_READERS
    print(f"{total} accounts and live services ({connection.vendor}):")
    print(f"  download and parse the user list      {download}")
    print(f"  list only, dry run                    {quick_figures}  {quick.forms_read} forms read")
    print(f"  full dry run, 1 reader                {one_figures}")
    print(f"  full dry run, {readers} readers               {dry_figures}  {dry.forms_read} forms read")
    print(f"  full run, queueing {full.queued} fixes        {full_figures}")
    print(f"  found: {dry.message}")


def measure_latency(total: int, seconds: float) -> None:
    """What the reader threads are for: a panel that takes its time over each form."""
    port = free_port()
    module, users = setup(f"bench {total} slow", total, f"http://127.0.0.1:{port}/ispmgr")
    with Panel(users, port) as panel:
        panel.slow(seconds)
        _, one_figures = timed(lambda: sync_accounts_run(module=module, readers=1))
        _, many_figures = timed(lambda: sync_accounts_run(module=module))
    readers = settings.SYNC_ACCOUNTS_READERS
    print(f"{total} accounts, {seconds * 1000:.0f} ms of panel time per call:")
    print(f"  full dry run, 1 reader                {one_figures}")
    print(f"  full dry run, {readers} readers               {many_figures}")


call_command("migrate", verbosity=0)
for size in (2_000, 20_000):
    measure(size)
measure_latency(2_000, 0.02)
