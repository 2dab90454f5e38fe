"""The Redis queue (TEST_TASKS_BACKEND=rq, run by .ci/run): panel operations really go through Redis, a retry waits
in RQ's schedule, and recover_operations queues there too. Skipped in the Dummy run, except the settings checks.
The Redis run keeps only tests that use the `tasks` fixture (tests/conftest.py), hence `tasks` below where unused."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone
from django_tasks import TaskResultStatus, task_backends
from rq.job import JobStatus

from billing.choices import PanelAction, ServiceStatus
from billing.services import service_mark_paid
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.conftest import RedisTaskRunner

REDIS = settings.TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend"
redis_only = pytest.mark.skipif(not REDIS, reason="the Redis queue: TEST_TASKS_BACKEND=rq")


def pay(service):
    service_mark_paid(service=service)
    return Operation.objects.get(service=service, action=PanelAction.OPEN)


def test_django_rq_is_an_app_only_when_the_redis_queue_is_selected(tasks):
    assert ("django_rq" in settings.INSTALLED_APPS) is REDIS
    assert isinstance(tasks, RedisTaskRunner) is REDIS


def test_an_unknown_test_tasks_backend_is_refused_with_the_choices():
    env = {**os.environ, "TEST_TASKS_BACKEND": "celery"}
    done = subprocess.run(
        [sys.executable, "-c", "import tests.settings"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "TEST_TASKS_BACKEND='celery': use one of dummy, rq" in done.stderr


@redis_only
def test_a_paid_service_is_opened_by_a_job_that_went_through_redis(make_service, panel, tasks):
    service = make_service()
    operation = pay(service)

    assert tasks.queue.count == 1
    (job,) = tasks.queue.get_jobs()
    assert (job.func_name, job.args) == ("provisioning.tasks.run_operation", (operation.pk,))

    assert tasks.run_all() == 1
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert task_backends["default"].get_result(job.id).status == TaskResultStatus.SUCCESSFUL
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert list(panel.app.users) == [service.panel_username]


@redis_only
def test_a_retry_waits_in_rqs_schedule_for_its_time_to_the_second(make_service, panel, tasks, settings):
    settings.PROVISIONING_RETRY_SECONDS = 30
    panel.app.faults.down = True
    operation = pay(make_service())

    tasks.run_next()

    operation.refresh_from_db()
    assert tasks.queue.count == 0
    (job_id,) = tasks.scheduled.get_job_ids()
    due = tasks.scheduled.get_scheduled_time(job_id)
    # RQ keeps whole seconds: the retry is queued for the next one, never before its time.
    assert operation.next_attempt_at <= due < operation.next_attempt_at + timedelta(seconds=1)
    assert tasks.pending()[0].task.run_after == due

    panel.app.faults.down = False
    assert tasks.run_all() == 1  # time passes at once, as with the Dummy backend
    assert tasks.scheduled.get_job_ids() == []
    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 2)


@redis_only
def test_recover_operations_queues_a_lost_task_again_in_redis(make_service, panel, tasks):
    operation = pay(make_service())
    tasks.backend.clear()  # Redis lost the job
    Operation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=30))

    call_command("recover_operations")

    assert [job.args for job in tasks.queue.get_jobs()] == [(operation.pk,)]
    tasks.run_all()
    operation.refresh_from_db()
    assert operation.status == OperationStatus.DONE


@redis_only
def test_dumpdata_skips_django_rqs_tableless_admin_model(make_service, tasks):
    make_service()
    call_command("check")
    dump = StringIO()
    call_command("dumpdata", stdout=dump)
    assert '"model": "billing.service"' in dump.getvalue()
