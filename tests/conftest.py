import threading

import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation
from django_tasks import TaskResultStatus, task_backends

from tests.factories import StaffUserFactory


@pytest.fixture(autouse=True)
def default_language():
    """A request to a /ru/ page leaves Russian active in the thread; every test starts in English."""
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.deactivate()


@pytest.fixture
def staff_user(db):
    return StaffUserFactory(username="staff@example.com")


@pytest.fixture
def admin_client(client, staff_user):
    """A browser session logged in to the admin as a superuser."""
    client.force_login(staff_user)
    return client


def postgres_only():
    return pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL for real row locks (set DATABASE_URL)")


@pytest.fixture
def ispmanager():
    """An ISPmanager Business on a loopback port with the administrator root / secret."""
    from provisioning.coremanager.emulator import EmulatorServer
    from provisioning.ispmanager.emulator import ISPmanagerEmulator

    with EmulatorServer(ISPmanagerEmulator(edition="business", admins={"root": "secret"})) as server:
        yield server


def run_at_once(count, work):
    """Run `work(i)` in `count` threads released together; return what each raised (or None)."""
    barrier = threading.Barrier(count)
    outcomes = [None] * count

    def run(i):
        try:
            barrier.wait()
            work(i)
        except Exception as error:
            outcomes[i] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.fixture
def ipmanager():
    """The seed's IPmanager: network 133.31.223.0/24; user billing / secret may take .0-.128 in the alias group.

    The administrator is admin / secret.
    """
    from ipam_sync.ipmanager.emulator import IPmanagerEmulator
    from provisioning.coremanager.emulator import EmulatorServer

    app = IPmanagerEmulator(admins={"admin": "secret"})
    app.add_network("133.31.223.0/24")
    app.add_user("billing", "secret", pools=["133.31.223.0-133.31.223.128"], groups=["alias"])
    with EmulatorServer(app) as server:
        yield server


class TaskRunner:
    """The tasks a test enqueued, run when the test says so (time between attempts passes at once)."""

    def __init__(self, backend):
        self.backend = backend

    def pending(self):
        return [result for result in self.backend.results if result.status == TaskResultStatus.READY]

    def run_next(self):
        result = self.pending()[0]
        self.backend.results.remove(result)
        result.task.call(*result.args, **result.kwargs)
        return result

    def run_all(self, limit=30):
        ran = 0
        while self.pending():
            self.run_next()
            ran += 1
            assert ran <= limit, "tasks keep enqueueing themselves"
        return ran


@pytest.fixture
def tasks():
    backend = task_backends["default"]
    backend.clear()
    yield TaskRunner(backend)
    backend.clear()
