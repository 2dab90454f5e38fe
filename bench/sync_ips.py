"""sync_ips at a provider's scale: a /16 in IPmanager, 30,000 addresses on each side, 1,000 differences each way.

Prints, measured in the same run: the time of downloading and parsing the IPmanager list, of a
dry run and of a full run, their SQL queries, peak Python memory, and the ratio of the comparison
to the download. Run at two sizes to show the queries do not grow with the number of addresses.
Uses a throwaway SQLite file, or DATABASE_URL when set (then an empty database it may fill).
"""

import ipaddress
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from billing.models import Client, Service, TariffPlan  # noqa: E402
from ipam_sync.ipmanager.emulator import IPmanagerEmulator  # noqa: E402
from ipam_sync.models import IPAssignment, IPmanagerIntegration  # noqa: E402
from ipam_sync.services import ipmanager_client, note_for  # noqa: E402
from ipam_sync.sync import sync_ips_run  # noqa: E402
from provisioning.coremanager.emulator import EmulatorServer  # noqa: E402
from provisioning.models import DataCenter, ProcessingModule  # noqa: E402

NETWORK = ipaddress.ip_network("10.0.0.0/16")
DIFFERENCES = 1_000
SERVICES = 300


def setup(total: int, app: IPmanagerEmulator, url: str) -> IPmanagerIntegration:
    """`total` addresses on each side; DIFFERENCES only in IPmanager and DIFFERENCES only in billing."""
    IPAssignment.objects.update(released_at=timezone.now())  # the previous size's
    integration = IPmanagerIntegration.objects.create(name=f"bench {total}", url=url, username="billing", password="secret")
    module = ProcessingModule.objects.create(
        product_type="vhost", name=f"bench {total}", url="http://127.0.0.1:9/ispmgr", username="root", password="x",
        data_center=DataCenter.objects.get_or_create(name="bench")[0], ipmanager=integration,
    )  # fmt: skip
    tariff = TariffPlan.objects.create(name="bench", product_type="vhost", processing_module=module, account_template="t")
    client = Client.objects.create(name="bench", email="bench@example.com")
    services = Service.objects.bulk_create(Service(client=client, tariff=tariff, domain=f"s{i}.example.com") for i in range(SERVICES))
    hosts = NETWORK.hosts()
    addresses = [str(next(hosts)) for _ in range(total + DIFFERENCES)]
    both, only_panel, only_billing = addresses[: total - DIFFERENCES], addresses[total - DIFFERENCES : total], addresses[total:]
    app.allocated.clear()
    for i, ip in enumerate(both + only_panel):
        service = services[i % SERVICES]
        app.take(ip, owner="billing", domain=service.domain, note=note_for(service.pk))
    IPAssignment.objects.bulk_create(
        (IPAssignment(integration=integration, service=services[i % SERVICES], address=ip) for i, ip in enumerate(both + only_billing)),
        batch_size=2000,
    )
    return integration


def timed(work):
    with CaptureQueriesContext(connection) as queries:
        start = time.perf_counter()
        result = work()
        elapsed = time.perf_counter() - start
    return result, elapsed, len(queries)


def measure(total: int, app: IPmanagerEmulator, url: str) -> None:
    integration = setup(total, app, url)
    client = ipmanager_client(integration)
    download = min(timed(client.addresses)[1] for _ in range(3))
    dry, dry_time, dry_queries = timed(lambda: sync_ips_run(integration=integration, dry_run=True, max_release=10**6))
    tracemalloc.start()
    sync_ips_run(integration=integration, dry_run=True, max_release=10**6)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full, full_time, full_queries = timed(lambda: sync_ips_run(integration=integration, max_release=10**6))
    again, _, _ = timed(lambda: sync_ips_run(integration=integration, max_release=10**6))
    print(f"{total} addresses on each side, {DIFFERENCES} differences each way ({connection.vendor}):")
    print(f"  download and parse the IPmanager list  {download:7.3f} s")
    print(f"  dry run (read, compare, record plan)   {dry_time:7.3f} s  {dry_queries} SQL queries  ratio {dry_time / download:.2f}x")
    print(f"  full run (and apply {DIFFERENCES * 2} changes)     {full_time:7.3f} s  {full_queries} SQL queries")
    print(f"  peak Python memory of a dry run        {peak / 2**20:7.1f} MiB")
    print(f"  plan: {dry.message}")
    print(f"  full: {full.message}")
    print(f"  again: {again.message}")


call_command("migrate", verbosity=0)
emulator = IPmanagerEmulator()
emulator.add_network(str(NETWORK))
emulator.add_user("billing", "secret", pools=[str(NETWORK)], groups=["alias"])
with EmulatorServer(emulator) as server:
    for size in (10_000, 30_000):
        measure(size, emulator, server.url)
