"""Every attempt at an operation has an owner: its lease, recovery of what a dead worker left, and
results applied only by the attempt that still holds the claim."""

import os
import socket
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from billing.choices import PanelAction, ServiceStatus, SuspendReason
from billing.services import service_action_request, service_mark_paid
from provisioning.choices import AttemptOutcome, OperationStatus
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.models import Operation, OperationAttempt
from provisioning.services import operation_retry, operation_run, operations_recover
from tests.conftest import postgres_only
from tests.factories import OperationAttemptFactory
from tests.provisioning.conftest import CallWatcher, HeldReply

LATE_AFTER = timedelta(minutes=5)


def pay(service):
    service_mark_paid(service=service)
    return Operation.objects.get(service=service, action=PanelAction.OPEN)


def outcomes(operation):
    return list(operation.attempt_log.order_by("number").values_list("number", "outcome"))


def in_thread(work):
    """Start `work()` in a thread of its own (its own database connection); return the thread and its result list."""
    results = []

    def run():
        try:
            results.append(work())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, results


def left_running(operation, *, started, lease_until):
    """What a worker leaves behind when it stops in the middle of attempt 1."""
    Operation.objects.filter(pk=operation.pk).update(status=OperationStatus.RUNNING, attempts=1, started_at=started)
    return OperationAttemptFactory(operation=operation, number=1, started_at=started, heartbeat_at=started, lease_until=lease_until)


def test_each_attempt_is_a_row_with_its_worker_times_outcome_and_error(make_service, panel, tasks):
    panel.app.faults.fail_next(1)
    operation = pay(make_service())

    tasks.run_all()

    first, second = operation.attempt_log.order_by("number")
    assert [(first.number, first.outcome), (second.number, second.outcome)] == [(1, AttemptOutcome.RETRY), (2, AttemptOutcome.SUCCEEDED)]
    assert first.worker == second.worker == f"{socket.gethostname()}:{os.getpid()}"
    assert str(first.error) == f"127.0.0.1:{panel.port} answered HTTP 503"
    assert str(second.error) == ""
    for attempt in (first, second):
        assert attempt.started_at <= attempt.heartbeat_at <= attempt.finished_at
        assert attempt.duration == attempt.finished_at - attempt.started_at
    operation.refresh_from_db()
    assert (operation.status, operation.attempts) == (OperationStatus.DONE, 2)


def test_the_lease_is_renewed_before_every_panel_call(module, make_service, panel, settings):
    settings.PROVISIONING_LEASE_SECONDS = 600
    seen = []

    def lease_now(func):
        seen.append((timezone.now(), OperationAttempt.objects.get().lease_until))

    with EmulatorServer(CallWatcher(panel.app, lease_now)) as watched:
        module.url = watched.url
        module.save()
        operation = pay(make_service())
        operation_run(operation_id=operation.pk)

    assert len(seen) == len(panel.app.calls) >= 3  # template, login look-up, create
    leases = [lease for _, lease in seen]
    assert leases == sorted(set(leases))  # a new lease for every call
    assert all(timedelta(seconds=590) < lease - at <= timedelta(seconds=600) for at, lease in seen)


def test_recovery_leaves_alone_an_attempt_that_runs_long_but_renewed_its_lease(make_service, panel, tasks):
    # Measured before: an open whose calls took longer than a fixed threshold was run a second time.
    operation = pay(make_service())
    tasks.backend.clear()
    an_hour_ago = timezone.now() - timedelta(hours=1)
    attempt = left_running(operation, started=an_hour_ago, lease_until=timezone.now() + timedelta(seconds=60))

    assert operations_recover(late_after=LATE_AFTER) == (0, 0)

    attempt.refresh_from_db()
    operation.refresh_from_db()
    assert (attempt.outcome, operation.status) == (AttemptOutcome.RUNNING, OperationStatus.RUNNING)
    assert tasks.pending() == []


def test_an_attempt_whose_lease_ran_out_is_expired_and_the_next_one_opens_the_account_once(make_service, panel, tasks):
    service = make_service()
    operation = pay(service)
    tasks.backend.clear()  # the task was lost with the worker
    attempt = left_running(operation, started=timezone.now() - timedelta(minutes=10), lease_until=timezone.now() - timedelta(seconds=1))
    out = StringIO()

    call_command("recover_operations", stdout=out)

    assert out.getvalue().strip() == "Operations queued again: 1 interrupted (their worker stopped), 0 overdue (their task was lost)."
    attempt.refresh_from_db()
    assert attempt.outcome == AttemptOutcome.EXPIRED
    assert str(attempt.error) == "The worker worker-1 stopped answering during attempt 1."
    assert attempt.duration == attempt.finished_at - attempt.started_at
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED
    assert [result.args for result in tasks.pending()] == [[operation.pk]]

    tasks.run_all()

    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    assert list(panel.app.users) == [service.panel_username]
    assert outcomes(operation) == [(1, AttemptOutcome.EXPIRED), (2, AttemptOutcome.SUCCEEDED)]


def test_recovery_run_twice_takes_an_expired_attempt_over_once(make_service, panel, tasks):
    operation = pay(make_service())
    tasks.backend.clear()
    left_running(operation, started=timezone.now() - timedelta(minutes=10), lease_until=timezone.now() - timedelta(seconds=1))

    assert operations_recover(late_after=LATE_AFTER) == (1, 0)
    assert operations_recover(late_after=LATE_AFTER) == (0, 0)
    assert len(tasks.pending()) == 1


@pytest.mark.parametrize(
    "held",
    ["user.edit", "user.add.finish"],
    ids=["the-old-worker-stops-at-its-next-call", "the-old-workers-late-success-is-dropped"],
)
def test_recovery_racing_a_slow_open_leaves_one_account_and_applies_one_attempt(module, make_service, panel, settings, caplog, held):
    """Worker 1's panel call outlasts its lease; recovery hands the operation to worker 2, which opens the account.

    Worker 1 is held in its login look-up (then stops before creating anything) or in its create
    (the account exists, its reply comes late): either way one account, one attempt applied.
    """
    settings.PROVISIONING_LEASE_SECONDS = 0  # every lease has run out by the time recovery looks
    slow = HeldReply(panel.app, held)
    with EmulatorServer(slow) as slow_panel:
        module.url = slow_panel.url
        module.save()
        service = make_service()
        operation = pay(service)
        first, first_result = in_thread(lambda: operation_run(operation_id=operation.pk))
        assert slow.acted.wait(timeout=10)

        assert operations_recover(late_after=LATE_AFTER) == (1, 0)
        second = operation_run(operation_id=operation.pk)  # another worker takes the requeued operation

        slow.release.set()
        first.join(timeout=30)

    assert first_result == [None]
    assert "attempt 1 of operation" in caplog.text
    assert "lost its claim when its lease ran out: its result is not applied" in caplog.text
    assert second.status == OperationStatus.DONE
    assert [func for func, _ in panel.app.calls].count("user.add.finish") == 1
    service.refresh_from_db()
    assert list(panel.app.users) == [service.panel_username]
    assert panel.app.users[service.panel_username]["password"] == service.panel_password
    assert outcomes(operation) == [(1, AttemptOutcome.EXPIRED), (2, AttemptOutcome.SUCCEEDED)]
    operation.refresh_from_db()
    assert (operation.status, str(operation.last_error)) == (OperationStatus.DONE, "")
    assert list(service.status_changes.values_list("to_status", flat=True)) == [ServiceStatus.PROCESSING, ServiceStatus.ACTIVE]


@postgres_only()
def test_an_open_whose_calls_together_outlast_the_lease_is_never_taken_over(make_service, panel, settings):
    settings.PROVISIONING_LEASE_SECONDS = 1
    panel.app.faults.delay = 0.4  # three calls or more: longer than one lease, each call well inside it
    service = make_service()
    operation = pay(service)

    worker, result = in_thread(lambda: operation_run(operation_id=operation.pk))
    taken_over = []
    while worker.is_alive():
        taken_over.append(operations_recover(late_after=LATE_AFTER)[0])
        time.sleep(0.05)
    worker.join()

    assert sum(taken_over) == 0
    assert result[0].status == OperationStatus.DONE
    assert outcomes(operation) == [(1, AttemptOutcome.SUCCEEDED)]
    assert len(panel.app.users) == 1


def test_a_success_applied_to_a_service_already_in_that_state_changes_nothing(make_service, panel, tasks, settings):
    """A failed resume retried after a sync already found the account active: done, no second status change."""
    service = make_service()
    pay(service)
    tasks.run_all()
    service_action_request(service=service, action=PanelAction.SUSPEND, suspend_reason=SuspendReason.STAFF)
    tasks.run_all()
    settings.PROVISIONING_MAX_ATTEMPTS = 1
    panel.app.faults.down = True
    service_action_request(service=service, action=PanelAction.RESUME)
    tasks.run_all()
    resume = Operation.objects.get(service=service, action=PanelAction.RESUME)
    assert resume.status == OperationStatus.FAILED
    panel.app.faults.down = False
    service.refresh_from_db()
    panel.app.users[service.panel_username]["active"] = True  # resumed by hand in the panel
    service_action_request(service=service, action=PanelAction.SYNC)
    tasks.run_all()
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE
    changes = service.status_changes.count()

    operation_retry(operation=resume)
    tasks.run_all()

    resume.refresh_from_db()
    service.refresh_from_db()
    assert (resume.status, service.status) == (OperationStatus.DONE, ServiceStatus.ACTIVE)
    assert service.status_changes.count() == changes
    assert outcomes(resume) == [(1, AttemptOutcome.FAILED), (2, AttemptOutcome.SUCCEEDED)]


def test_the_operation_page_shows_its_attempts_inline_read_only(admin_client, make_service, panel, tasks):
    panel.app.faults.fail_next(1)
    operation = pay(make_service())
    tasks.run_all()

    page = admin_client.get(reverse("admin:provisioning_operation_change", args=[operation.pk]))

    assert page.status_code == 200
    (inline,) = page.context["inline_admin_formsets"]
    assert [form.original.number for form in inline] == [1, 2]
    assert not inline.has_add_permission and not inline.has_delete_permission
    for text in ("Failed, will be retried", "Succeeded", f"{socket.gethostname()}:{os.getpid()}", "answered HTTP 503"):
        assert text in page.text
