"""The shop-window's speed next to a bare Django view, both served by the same gunicorn in one run.

Starts gunicorn (2 sync workers, production settings: DEBUG off) on a free loopback port over a
throwaway SQLite database holding the demo's data (or DATABASE_URL when set: an empty database it
may fill), then sends the same load to each page in turn, ROUNDS times SECONDS each: anonymous
visitors, one request per connection (gunicorn's sync workers close every connection). The load
comes from wrk when it is installed (`apt-get install wrk`), otherwise from CLIENTS Python
processes. Prints requests/s of each (the median of the rounds) and their ratio, and the CPU time
gunicorn's workers spent per request, which other work on the machine disturbs less.
"""

import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
ROUNDS = 3
SECONDS = 4
CLIENTS = 2
PAGES = {"bare Django view": "/bench/bare/", "shop-window": "/"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(folder: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key != "DEBUG"}
    env.setdefault("DATABASE_URL", f"sqlite:///{folder}/bench.sqlite3")
    env |= {
        "DJANGO_SETTINGS_MODULE": "bench.shop_site.settings",
        "PYTHONPATH": str(ROOT),
        "ENV_FILE": os.devnull,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": secrets.token_urlsafe(20),
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_ROOT": f"{folder}/static",
        "LOG_LEVEL": "WARNING",
    }
    return env


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603


def wait_until_serving(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            if get(port, "/bench/bare/").startswith(b"HTTP/1.1 200"):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start within 30 s")


def get(port: int, path: str) -> bytes:
    """One request on its own connection, as a sync worker serves it: the raw reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def workers_cpu(master: int) -> float:
    """CPU seconds used so far by gunicorn's workers, the children of `master` (from /proc)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a process that has just ended
        if int(fields[1]) == master:
            ticks += int(fields[11]) + int(fields[12])  # utime and stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _client(port: int, path: str, seconds: float, counts) -> None:
    done, failed, deadline = 0, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        if get(port, path).startswith(b"HTTP/1.1 200"):
            done += 1
        else:
            failed += 1
    counts.put((done, failed))


def load_python(port: int, path: str, seconds: float) -> tuple[int, float]:
    """(requests answered, seconds taken)."""
    counts = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=_client, args=(port, path, seconds, counts)) for _ in range(CLIENTS)]
    start = time.monotonic()
    for client in clients:
        client.start()
    results = [counts.get() for _ in clients]
    elapsed = time.monotonic() - start
    for client in clients:
        client.join()
    if any(failed for _, failed in results):
        raise SystemExit(f"{path} answered something other than 200")
    return sum(done for done, _ in results), elapsed


def load_wrk(port: int, path: str, seconds: float) -> tuple[int, float]:
    """(requests answered, seconds taken)."""
    result = subprocess.run(  # noqa: S603 - wrk on our own loopback server
        [shutil.which("wrk"), "-t2", "-c8", f"-d{seconds}s", "-H", "Connection: close", f"http://127.0.0.1:{port}{path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    if "Non-2xx" in result.stdout:
        raise SystemExit(f"{path} answered something other than 2xx:\n{result.stdout}")
    done, elapsed = re.search(r"(\d+) requests in ([\d.]+)s", result.stdout).groups()
    return int(done), float(elapsed)


def main() -> None:
    load = load_wrk if shutil.which("wrk") else load_python
    with tempfile.TemporaryDirectory() as folder:
        env = environment(folder)
        manage(env, "migrate", "--noinput")
        manage(env, "load_demo", "--force")
        manage(env, "collectstatic", "--noinput")
        port = free_port()
        gunicorn = ["gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--chdir", str(ROOT), "--log-level=warning"]
        gunicorn += ["--no-control-socket", "billing.wsgi"]  # no socket in ~/.gunicorn that another gunicorn may hold
        server = subprocess.Popen([sys.executable, "-m", *gunicorn], env=env)  # noqa: S603 - gunicorn from our own venv
        try:
            wait_until_serving(port, server)
            page = get(port, PAGES["shop-window"])
            if not page.startswith(b"HTTP/1.1 200") or b"Site hosting" not in page:
                raise SystemExit(f"the shop-window does not show the demo's plans:\n{page[:500]!r}")
            for path in PAGES.values():  # every worker renders its pages once before the clock starts
                load(port, path, 1)
            rates, cpu = {name: [] for name in PAGES}, {name: [] for name in PAGES}
            for _ in range(ROUNDS):
                for name, path in PAGES.items():
                    used = workers_cpu(server.pid)
                    done, elapsed = load(port, path, SECONDS)
                    rates[name].append(done / elapsed)
                    cpu[name].append((workers_cpu(server.pid) - used) / done)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
    tool = "wrk, 8 connections" if load is load_wrk else f"{CLIENTS} Python client processes"
    print(f"gunicorn, {WORKERS} sync workers, DEBUG off, {database}, demo data; load: {tool}; median of {ROUNDS} rounds of {SECONDS} s")
    for name in PAGES:
        rounds = ", ".join(f"{value:.0f}" for value in rates[name])
        each = statistics.median(cpu[name]) * 1000
        print(f"  {name:18} {statistics.median(rates[name]):6.0f} requests/s ({rounds}), {each:.2f} ms of worker CPU each")
    shop, bare = (statistics.median(rates[name]) for name in ("shop-window", "bare Django view"))
    shop_cpu, bare_cpu = (statistics.median(cpu[name]) for name in ("shop-window", "bare Django view"))
    print(f"  shop-window / bare view: {shop / bare:.2f}x in requests/s, {bare_cpu / shop_cpu:.2f}x in CPU per request")


if __name__ == "__main__":
    main()
