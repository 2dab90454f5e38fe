"""The API's services list next to a bare DRF view, both served by the same gunicorn in one run.

Starts gunicorn (2 sync workers, production settings: DEBUG off, no throttling) on a free loopback port
over a throwaway SQLite database (or DATABASE_URL when set: an empty database it may fill) holding the
demo's tariffs and SERVICES services of CLIENTS clients, each with a resource. Then sends the same load,
with a staff token, to `GET /api/v1/services?page_size=50` and to an APIView that returns a constant after
the same authentication, scopes and throttle, ROUNDS times SECONDS each (wrk when installed, otherwise
Python client processes, one request per connection as gunicorn's sync workers serve them). Prints the
requests/s of each (the median of the rounds), their ratio, the workers' CPU time per request and the
SQL queries each request makes.
"""

import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.shop import CLIENTS as LOAD_CLIENTS  # noqa: E402
from bench.shop import free_port, load_python, workers_cpu  # noqa: E402

WORKERS = 2
ROUNDS = 3
SECONDS = 4
SERVICES = 3000
CLIENTS = 300
PAGES = {"bare DRF view": "/bench/bare-api", "services list": "/api/v1/services?page_size=50"}


def environment(folder: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    env.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.sqlite3")
    env |= {
        "DJANGO_SETTINGS_MODULE": "bench.api_site.settings",
        "PYTHONPATH": str(ROOT),
        "ENV_FILE": os.devnull,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": secrets.token_urlsafe(20),
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": f"{folder}/static",
        "LOG_LEVEL": "WARNING",
        "API_THROTTLE_RATE": "",  # the benchmark is one token asking as fast as it can
    }
    return env


def fill() -> None:
    """In a child process with the bench settings: the data, a staff token, and the queries per request (JSON on stdout)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client as BrowserClient
    from django.test.utils import CaptureQueriesContext

    from billing.api.tokens import token_create
    from billing.choices import ResourceKind, ServiceStatus
    from billing.models import Client, Service, ServiceResource, TariffPlan

    call_command("load_demo", "--force", stdout=open(os.devnull, "w"))  # noqa: SIM115 - closed with the process
    tariffs = list(TariffPlan.objects.filter(prices__isnull=False).distinct().order_by("pk"))
    clients = Client.objects.bulk_create(Client(name=f"Bench client {i}", email=f"bench{i}@example.com") for i in range(CLIENTS))
    services = Service.objects.bulk_create(
        (
            Service(
                client=clients[i % CLIENTS],
                tariff=tariffs[i % len(tariffs)],
                price=tariffs[i % len(tariffs)].prices.first().price,
                domain=f"site{i}.example.com",
                status=ServiceStatus.ACTIVE,
            )
            for i in range(SERVICES)
        ),
        batch_size=1000,
    )
    ServiceResource.objects.bulk_create(
        (ServiceResource(service=service, kind=ResourceKind.DATABASES, quantity=5) for service in services), batch_size=1000
    )
    staff = get_user_model().objects.create_user(username="bench-staff@example.com", password=secrets.token_urlsafe(20), is_staff=True)
    staff.is_superuser = True
    staff.save()
    plaintext = token_create(user=staff, name="bench", scopes=["read"])[1]
    browser = BrowserClient(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    queries = {}
    for name, path in PAGES.items():
        browser.get(path)  # the token's last-used time is written at most once a minute: not in the count
        with CaptureQueriesContext(connection) as captured:
            response = browser.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.content[:300]!r}")
        queries[name] = len(captured)
    count = browser.get(PAGES["services list"]).json()
    if len(count["results"]) != 50:
        raise SystemExit(f"the services list gave {len(count['results'])} services, not 50")
    print(json.dumps({"token": plaintext, "queries": queries}))


def get(port: int, path: str, token: str) -> bytes:
    """One request on its own connection with the token: the raw reply."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def load_wrk(port: int, path: str, seconds: float, token: str) -> tuple[int, float]:
    """(requests answered, seconds taken)."""
    headers = ["-H", "Connection: close", "-H", f"Authorization: Bearer {token}"]
    result = subprocess.run(  # noqa: S603 - wrk on our own loopback server
        [shutil.which("wrk"), "-t2", "-c8", f"-d{seconds}s", *headers, f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    if "Non-2xx" in result.stdout:
        raise SystemExit(f"{path} answered something other than 2xx:\n{result.stdout}")
    done, elapsed = re.search(r"(\d+) requests in ([\d.]+)s", result.stdout).groups()
    return int(done), float(elapsed)


def load_with_token(port: int, path: str, seconds: float, token: str) -> tuple[int, float]:
    if shutil.which("wrk"):
        return load_wrk(port, path, seconds, token)
    import bench.shop as shop

    shop.get = lambda port, path: get(port, path, token)  # the shop bench's clients, with the token
    return load_python(port, path, seconds)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        env = environment(folder)
        os.mkdir(env["STATIC_ROOT"])  # the API serves no static files: an empty folder, not collectstatic
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        filled = subprocess.run([sys.executable, __file__, "--fill"], cwd=ROOT, env=env, check=True, stdout=subprocess.PIPE, text=True)  # noqa: S603
        setup = json.loads(filled.stdout.strip().splitlines()[-1])
        token = setup["token"]
        port = free_port()
        gunicorn = ["gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level=warning"]
        gunicorn += ["--no-control-socket", "billing.wsgi"]
        server = subprocess.Popen([sys.executable, "-m", *gunicorn], env=env)  # noqa: S603 - gunicorn from our own venv
        try:
            _wait(port, server, token)
            for path in PAGES.values():  # every worker answers each once before the clock starts
                load_with_token(port, path, 1, token)
            rates, cpu = {name: [] for name in PAGES}, {name: [] for name in PAGES}
            for _ in range(ROUNDS):
                for name, path in PAGES.items():
                    used = workers_cpu(server.pid)
                    done, elapsed = load_with_token(port, path, SECONDS, token)
                    rates[name].append(done / elapsed)
                    cpu[name].append((workers_cpu(server.pid) - used) / done)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
    tool = "wrk, 8 connections" if shutil.which("wrk") else f"{LOAD_CLIENTS} Python client processes"
    print(f"gunicorn, {WORKERS} sync workers, DEBUG off, {database}, {SERVICES:,} services; staff token; load: {tool}; "
          f"median of {ROUNDS} rounds of {SECONDS} s")
    for name in PAGES:
        rounds = ", ".join(f"{value:.0f}" for value in rates[name])
        each = statistics.median(cpu[name]) * 1000
        print(f"  {name:14} {statistics.median(rates[name]):6.0f} requests/s ({rounds}), {each:.2f} ms of worker CPU each, "
              f"{setup['queries'][name]} SQL queries each")
    listed, bare = (statistics.median(rates[name]) for name in ("services list", "bare DRF view"))
    listed_cpu, bare_cpu = (statistics.median(cpu[name]) for name in ("services list", "bare DRF view"))
    print(f"  services list / bare view: {listed / bare:.2f}x in requests/s, {bare_cpu / listed_cpu:.2f}x in CPU per request")


def _wait(port: int, server: subprocess.Popen, token: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            if get(port, PAGES["bare DRF view"], token).startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start within 30 s")


if __name__ == "__main__":
    fill() if sys.argv[1:] == ["--fill"] else main()
