import threading

import django_rq
import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation
from django_tasks import TaskResultStatus, task_backends
from django_tasks_rq import Job
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry

from tests.factories import StaffUserFactory


def pytest_collection_modifyitems(config, items):
    """The Redis run (TEST_TASKS_BACKEND=rq) repeats only the tests that use the queue (the `tasks` fixture);
    the others would only do again what the run with the Dummy backend did."""
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_rq.RQBackend":
        return
    queue_free = [item for item in items if "tasks" not in getattr(item, "fixturenames", ())]
    if queue_free:
        config.hook.pytest_deselected(items=queue_free)
        items[:] = [item for item in items if "tasks" in getattr(item, "fixturenames", ())]


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


class RedisTaskRunner:
    """TaskRunner's API over the Redis queue (TEST_TASKS_BACKEND=rq): the tasks wait in RQ's queue, or, deferred,
    in its scheduled-job registry; an RQ worker in this process runs them, so they see the test's database."""

    def __init__(self):
        self.queue = django_rq.get_queue("default", job_class=Job)
        self.scheduled = ScheduledJobRegistry(queue=self.queue)
        self.backend = RedisTestDatabase(self.queue.connection)

    def _waiting(self):
        """The jobs not run yet, deferred ones too, in the order they were enqueued (as the Dummy backend keeps them)."""
        ids = self.queue.get_job_ids() + self.scheduled.get_job_ids()
        jobs = [job for job in self.queue.job_class.fetch_many(ids, connection=self.queue.connection) if job is not None]
        return sorted(jobs, key=lambda job: job.created_at)

    def pending(self):
        return [job.task_result for job in self._waiting()]

    def run_next(self):
        job = self._waiting()[0]
        result = job.task_result
        # Time passes at once: a deferred job leaves the scheduled registry as RQ's scheduler moves it when it
        # is due, and the job goes to the head of the queue, so that it is the one the worker takes.
        self.scheduled.remove(job)
        self.queue.remove(job)
        self.queue.enqueue_job(job, at_front=True)
        worker = InProcessWorker([self.queue], connection=self.queue.connection, job_class=self.queue.job_class)
        worker.work(burst=True, max_jobs=1, logging_level="WARNING")
        if worker.failure is not None:
            raise worker.failure  # as the Dummy runner's direct call would
        return result

    run_all = TaskRunner.run_all


class RedisTestDatabase:
    """`tasks.backend` in Redis mode: `clear()` empties the tests' Redis database (the queue, the schedule, the results)."""

    def __init__(self, connection):
        self.connection = connection

    def clear(self):
        self.connection.flushdb()


class InProcessWorker(SimpleWorker):
    """RQ's worker that runs a job without forking; it leaves the test process's signal handlers alone, keeps a
    job's exception for the test, and listens to no commands (the channel's thread costs 0.1 s to stop)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, exception_handlers=[self._keep_failure], **kwargs)
        self.failure = None

    def _keep_failure(self, job, exc_type, exc_value, traceback):
        self.failure = exc_value

    def _install_signal_handlers(self):
        pass

    def subscribe(self):
        pass

    def unsubscribe(self):
        pass


@pytest.fixture
def tasks():
    if settings.TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
        runner = RedisTaskRunner()
        runner.backend.clear()
        yield runner
        runner.backend.clear()
        return
    backend = task_backends["default"]
    backend.clear()
    yield TaskRunner(backend)
    backend.clear()
