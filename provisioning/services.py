"""Panel operations: asking for them, running them with retries, and the staff queue.

Panel calls happen only in `operation_run` (a background task), outside any database
transaction, and in `module_check_connection`. Billing state changes after the panel confirmed.

Each run of an operation is an attempt (OperationAttempt) that holds the claim on it. The attempt
renews its lease before every panel call; `operations_recover` takes over only an attempt whose
lease ran out, and a result is applied only by the attempt that still holds the claim, so a slow
worker and the one that replaced it never both apply theirs. Row locks follow billing.locks.
"""

import logging
import os
import secrets
import socket
import string
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, Max, OuterRef
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.choices import PanelAction, ServiceStatus, SuspendReason
from billing.locks import lock_objects
from billing.models import Service
from billing.services import NothingToDo, service_period_start, service_resume_if_paid, service_status_change
from billing.stored_text import StoredText
from billing.task_queue import enqueue
from billing.webhooks.events import event_record
from billing.webhooks.models import EventType
from billing.webhooks.payloads import operation_payload
from ipam_sync.models import IPAssignment
from ipam_sync.services import service_ips_allocate, service_ips_release, service_ips_trim, wanted_ips
from provisioning.choices import PENDING_OPERATION_STATUSES, AttemptOutcome, OperationStatus
from provisioning.coremanager.check import CheckResult
from provisioning.coremanager.client import on_call
from provisioning.coremanager.errors import PermanentError, ProvisioningError, TransientError
from provisioning.models import Operation, OperationAttempt, ProcessingModule

logger = logging.getLogger(__name__)

PASSWORD_ALPHABETS = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!#%*+-=_")
# Actions that set a password the billing must remember once the panel has it.
PASSWORD_ACTIONS = (PanelAction.OPEN, PanelAction.CHANGE_PASSWORD)


def strong_password(length: int = 16) -> str:
    """Random, with every kind of character a panel's password policy may ask for."""
    alphabet = "".join(PASSWORD_ALPHABETS)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(char in kind for char in password) for kind in PASSWORD_ALPHABETS):
            return password


def operation_request(
    *, service: Service, action: str, requested_by=None, reason: StoredText | str = "", payload: dict | None = None
) -> Operation:
    """Queue a panel action; the task is enqueued once the surrounding transaction commits."""
    try:
        with transaction.atomic():
            operation = Operation.objects.create(
                service=service,
                action=action,
                requested_by=requested_by,
                reason=reason,
                payload=payload or {},
                secret=strong_password() if action in PASSWORD_ACTIONS else None,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        raise _busy(service.pk) from None
    transaction.on_commit(partial(_enqueue, operation.pk))
    return operation


class ClaimLost(Exception):
    """The attempt's lease ran out and recovery handed the operation on: this worker stops calling the panel."""


def _busy(service_id: int) -> ValidationError:
    return ValidationError(
        _("Service #%(id)d already has an operation in progress: wait for it to finish.") % {"id": service_id}, code="busy"
    )


def _enqueue(operation_id: int, run_after=None) -> None:
    from provisioning.tasks import run_operation

    enqueue(run_operation, operation_id, run_after=run_after)


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_end(now):
    return now + timedelta(seconds=settings.PROVISIONING_LEASE_SECONDS)


def operation_run(*, operation_id: int) -> Operation | None:
    """Run one attempt of a queued operation.

    None when there was nothing to apply: the operation is not queued (another worker has it), its
    processing module is disabled (it stays queued until the module is enabled again), or the
    attempt lost its claim while it ran.
    """
    attempt = _claim(operation_id)
    if attempt is None:
        return None
    operation = (
        Operation.objects.select_related("service__tariff__processing_module__ipmanager", "service__ordered_by")
        .prefetch_related("service__resources")
        .get(pk=operation_id)
    )
    outcome, error = None, None
    renewing = on_call.set(partial(_lease_renew, attempt))
    try:
        outcome = _perform(operation)
    except ClaimLost:
        return _dropped(attempt)
    except ProvisioningError as failure:
        error = failure
    except Exception as failure:
        logger.exception("operation %s failed unexpectedly", operation_id)
        error = PermanentError(StoredText(gettext_noop("unexpected error: %(error)s"), {"error": repr(failure)}))
    finally:
        on_call.reset(renewing)
    if error is not None:
        return _attempt_failed(operation, attempt, error)
    return _succeeded(operation, attempt, outcome)


def _claim(operation_id: int) -> OperationAttempt | None:
    """Take a queued operation and open its next attempt, or None when it is not queued or its module is disabled."""
    now = timezone.now()
    with transaction.atomic():
        # The module's switch is read in the same statement as the claim: disabling it holds every
        # attempt not claimed yet. EXISTS rather than a join, which Django would turn into
        # `id IN (SELECT ...)` and PostgreSQL would then not re-check the status after a concurrent claim.
        enabled = ProcessingModule.objects.filter(is_enabled=True, tariffs__services=OuterRef("service_id"))
        waiting = Operation.objects.filter(Exists(enabled), pk=operation_id, status=OperationStatus.QUEUED)
        claimed = waiting.update(
            status=OperationStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, updated_at=now
        )
        if not claimed:
            return None
        # Numbered across retries by staff, which start `attempts` again from zero.
        last = OperationAttempt.objects.filter(operation_id=operation_id).aggregate(last=Max("number"))["last"] or 0
        return OperationAttempt.objects.create(
            operation_id=operation_id, number=last + 1, worker=_worker(), started_at=now, heartbeat_at=now, lease_until=_lease_end(now)
        )


def _lease_renew(attempt: OperationAttempt) -> None:
    """Before each panel call: extend the lease, or stop when recovery has handed the operation on."""
    now = timezone.now()
    renewed = OperationAttempt.objects.filter(pk=attempt.pk, outcome=AttemptOutcome.RUNNING).update(
        heartbeat_at=now, lease_until=_lease_end(now)
    )
    if not renewed:
        raise ClaimLost(attempt.pk)


def _attempt_finish(attempt: OperationAttempt, outcome: str, error: StoredText | str = "") -> bool:
    """End the attempt if it still holds the claim; False when recovery took it (its result is then dropped)."""
    now = timezone.now()
    return bool(
        OperationAttempt.objects.filter(pk=attempt.pk, outcome=AttemptOutcome.RUNNING).update(
            outcome=outcome, finished_at=now, duration=now - attempt.started_at, error=error
        )
    )


def _dropped(attempt: OperationAttempt) -> None:
    logger.warning(
        "attempt %s of operation %s (%s) lost its claim when its lease ran out: its result is not applied",
        attempt.number,
        attempt.operation_id,
        attempt.worker,
    )


def _open(backend, service: Service, password: str) -> str:
    # Addresses first: when IPmanager cannot give them, no account has been made in the panel.
    addresses = service_ips_allocate(service=service) if wanted_ips(service) else []
    login = backend.open(service, password=password)
    if addresses:
        backend.assign_ips(service, login=login, addresses=addresses)
    return login


def _close(backend, service: Service) -> None:
    # The account first (its sites stop using the addresses), then the addresses off the panel, then back to IPmanager:
    # released while still configured in the panel, an address could go to another customer and clash.
    backend.close(service)
    held = IPAssignment.objects.filter(service=service, released_at__isnull=True).values_list("address", flat=True)
    backend.unassign_ips(service, list(held))
    service_ips_release(service=service)


def _set_limits(backend, service: Service) -> None:
    # The plan's limits, then the dedicated IPs brought to the number now paid for: the extra ones off the panel and back to
    # IPmanager, or the missing ones taken (adopted by their note on a retry) and every one assigned (assigning an address
    # the account already has changes nothing, so a retry after a lost reply completes what the first attempt began).
    backend.set_limits(service)
    service_ips_trim(service=service, backend=backend)
    if wanted_ips(service):
        backend.assign_ips(service, login=service.panel_username, addresses=service_ips_allocate(service=service))


def _perform(operation: Operation):
    service = operation.service
    backend = service.tariff.processing_module.get_backend()
    actions = {
        PanelAction.OPEN: lambda: _open(backend, service, operation.secret),
        PanelAction.SUSPEND: lambda: backend.suspend(service),
        PanelAction.RESUME: lambda: backend.resume(service),
        PanelAction.CLOSE: lambda: _close(backend, service),
        PanelAction.SET_LIMITS: lambda: _set_limits(backend, service),
        PanelAction.CHANGE_PASSWORD: lambda: backend.change_password(service, password=operation.secret),
        PanelAction.SYNC: lambda: backend.sync(service),
    }
    return actions[operation.action]()


def _lock_service_and_operation(operation: Operation) -> Service:
    (service,), (locked,) = lock_objects(Service.objects.filter(pk=operation.service_id), Operation.objects.filter(pk=operation.pk))
    operation.payload = locked.payload  # staff may have changed a pending suspension's reason meanwhile
    return service


def _status_to(service: Service, to: str, **change) -> bool:
    """Move the service to `to` unless it is there already: the same success applied twice changes nothing."""
    if service.status == to:
        return False
    service_status_change(service=service, to=to, **change)
    return True


def _succeeded(operation: Operation, attempt: OperationAttempt, outcome) -> Operation | None:
    with transaction.atomic():
        service = _lock_service_and_operation(operation)
        if not _attempt_finish(attempt, AttemptOutcome.SUCCEEDED):
            return _dropped(attempt)
        by, reason = operation.requested_by, operation.reason
        match operation.action:
            case PanelAction.OPEN:
                service.panel_username, service.panel_password = outcome, operation.secret
                service.save(update_fields=["panel_username", "panel_password", "updated_at"])
                service_period_start(service=service, at=timezone.now())
                operation.result = StoredText(gettext_noop("Account %(login)s created."), {"login": outcome})
                if _status_to(service, ServiceStatus.ACTIVE, by=by, reason=operation.result):
                    transaction.on_commit(partial(_notify_client_active, service.pk))
            case PanelAction.SUSPEND:
                suspend_reason = operation.payload.get("suspend_reason", "")
                _status_to(service, ServiceStatus.SUSPENDED, by=by, reason=reason, suspend_reason=suspend_reason)
                if suspend_reason == SuspendReason.NONPAYMENT:  # paid while the suspension was on its way: back online
                    transaction.on_commit(partial(service_resume_if_paid, service_id=service.pk))
            case PanelAction.RESUME:
                _status_to(service, ServiceStatus.ACTIVE, by=by, reason=reason)
            case PanelAction.CLOSE:
                _status_to(service, ServiceStatus.DELETED, by=by, reason=reason)
            case PanelAction.CHANGE_PASSWORD:
                service.panel_password = operation.secret
                service.save(update_fields=["panel_password", "updated_at"])
            case PanelAction.SYNC:
                operation.result = _sync_result(service, outcome, by)
        operation.status, operation.finished_at, operation.last_error, operation.secret = OperationStatus.DONE, timezone.now(), "", None
        operation.save(update_fields=["status", "finished_at", "last_error", "secret", "result", "updated_at"])
    return operation


def _sync_result(service: Service, account, by) -> StoredText:
    """Bring the service's status in line with what the panel says, and say what was found."""
    if not account.exists:
        return StoredText(gettext_noop("The account %(login)s does not exist in the panel."), {"login": service.panel_username or "-"})
    wanted = ServiceStatus.ACTIVE if account.active else ServiceStatus.SUSPENDED
    if service.status in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED, ServiceStatus.FAILED) and service.status != wanted:
        service_status_change(service=service, to=wanted, by=by, reason=StoredText(gettext_noop("the panel reports this state")))
    limits = ", ".join(f"{name}={value or '∞'}" for name, value in sorted(account.limits.items()))
    state = StoredText(gettext_noop("active") if account.active else gettext_noop("suspended"))
    return StoredText(gettext_noop("%(login)s: %(state)s; %(limits)s"), {"login": service.panel_username, "state": state, "limits": limits})


def _attempt_failed(operation: Operation, attempt: OperationAttempt, error: ProvisioningError) -> Operation | None:
    retry = isinstance(error, TransientError) and operation.attempts < settings.PROVISIONING_MAX_ATTEMPTS
    now = timezone.now()
    with transaction.atomic():
        service = _lock_service_and_operation(operation)
        if not _attempt_finish(attempt, AttemptOutcome.RETRY if retry else AttemptOutcome.FAILED, error.message):
            return _dropped(attempt)
        operation.last_error = error.message
        if retry:
            operation.status = OperationStatus.QUEUED
            operation.next_attempt_at = now + timedelta(seconds=settings.PROVISIONING_RETRY_SECONDS * 2 ** (operation.attempts - 1))
            operation.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
            transaction.on_commit(partial(_enqueue, operation.pk, run_after=operation.next_attempt_at))
            return operation
        operation.status, operation.finished_at = OperationStatus.FAILED, now
        operation.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
        event_record(EventType.OPERATION_FAILED, operation_payload(operation))
        if operation.action == PanelAction.OPEN:
            _status_to(service, ServiceStatus.FAILED, by=operation.requested_by, reason=error.message)
        transaction.on_commit(partial(_notify_department, operation.pk))
    return operation


def _notify_client_active(service_id: int) -> None:
    """Tell the client where to log in; the password stays in the client area, never in an email."""
    service = Service.objects.select_related("client", "tariff__processing_module").get(pk=service_id)
    with translation.override(service.client.language):
        subject = _("Your service #%(id)d is ready") % {"id": service.pk}
        body = _(
            "%(tariff)s %(domain)s is active.\n\nControl panel: %(url)s\nUsername: %(login)s\nThe password is in your client area."
        ) % {
            "tariff": service.tariff,
            "domain": service.domain,
            "url": service.tariff.processing_module.url,
            "login": service.panel_username,
        }
    try:
        send_mail(subject, body, None, [service.client.email])
    except OSError:
        logger.exception("could not tell the client of service %s that it is active", service_id)


def _notify_department(operation_id: int) -> None:
    operation = Operation.objects.select_related("service__tariff__processing_module__department").get(pk=operation_id)
    module = operation.service.tariff.processing_module
    if module.department is None:
        return
    emails = list(module.department.user_set.filter(is_active=True).exclude(email="").values_list("email", flat=True))
    if not emails:
        return
    subject = _("Operation failed: %(action)s for service #%(id)d") % {"action": operation.get_action_display(), "id": operation.service_id}
    body = _("Module: %(module)s\nAttempts: %(attempts)d\nError: %(error)s\n\nRetry or resolve it in the staff queue.") % {
        "module": module,
        "attempts": operation.attempts,
        "error": operation.last_error,
    }
    try:
        send_mail(subject, body, None, emails)
    except OSError:
        logger.exception("could not tell %s about failed operation %s", module.department, operation_id)


def operation_retry(*, operation: Operation, by=None) -> Operation:
    """Put a failed operation back in the queue, from its first attempt."""
    with transaction.atomic():
        # The service first, as a new request locks it (billing.locks): the two wait for each other.
        (service,), (locked,) = lock_objects(Service.objects.filter(pk=operation.service_id), Operation.objects.filter(pk=operation.pk))
        if locked.status != OperationStatus.FAILED:
            raise ValidationError(_("Only a failed operation can be retried."), code="not_failed")
        if Operation.objects.filter(service_id=service.pk, status__in=PENDING_OPERATION_STATUSES).exists():
            raise _busy(service.pk)
        locked.status, locked.attempts, locked.next_attempt_at = OperationStatus.QUEUED, 0, timezone.now()
        locked.resolved_at = locked.resolved_by = None
        try:
            with transaction.atomic():
                locked.save(update_fields=["status", "attempts", "next_attempt_at", "resolved_at", "resolved_by", "updated_at"])
        except IntegrityError:  # a request that did not lock the service queued another operation
            raise _busy(service.pk) from None
        if locked.action == PanelAction.OPEN and service.status == ServiceStatus.FAILED:
            service_status_change(service=service, to=ServiceStatus.PROCESSING, by=by, reason=StoredText(gettext_noop("retried by staff")))
        transaction.on_commit(partial(_enqueue, locked.pk))
    return locked


def operation_resolve(*, operation: Operation, by=None) -> Operation:
    """Take a failed operation out of the staff queue: someone dealt with it by hand."""
    updated = Operation.objects.filter(pk=operation.pk, status=OperationStatus.FAILED, resolved_at__isnull=True).update(
        resolved_at=timezone.now(), resolved_by=by
    )
    if not updated:
        raise ValidationError(_("Only a failed, unresolved operation can be marked resolved."), code="not_failed")
    operation.refresh_from_db()
    return operation


def operations_recover(*, late_after: timedelta) -> tuple[int, int]:
    """Requeue what a dead worker or a lost task left behind; returns (interrupted, late) counts.

    An attempt whose lease ran out made no panel call for longer than one can take: its worker died
    or hangs. It is marked expired, so that whatever it may still report is dropped, and its
    operation is queued again (safe: every panel action is idempotent). A queued operation long past
    its time lost its task (say, a crash right after the commit) or waited for its module to be
    enabled again.
    """
    now = timezone.now()
    expired = OperationAttempt.objects.filter(outcome=AttemptOutcome.RUNNING, lease_until__lt=now)
    interrupted = [
        attempt.operation_id for attempt in expired.only("operation_id", "number", "worker", "started_at") if _expire(attempt, now)
    ]
    # Running without a running attempt: claimed by a worker of a version that recorded none. A claim
    # made since would have moved started_at past the cut-off.
    cutoff = now - timedelta(seconds=settings.PROVISIONING_LEASE_SECONDS)
    unrecorded = Operation.objects.filter(status=OperationStatus.RUNNING, started_at__lt=cutoff)
    for operation_id in unrecorded.exclude(attempt_log__outcome=AttemptOutcome.RUNNING).values_list("pk", flat=True):
        stopped = StoredText(gettext_noop("The worker stopped during the attempt."))
        if unrecorded.filter(pk=operation_id).update(
            status=OperationStatus.QUEUED, next_attempt_at=now, last_error=stopped, updated_at=now
        ):
            interrupted.append(operation_id)
    late = list(
        Operation.objects.filter(
            status=OperationStatus.QUEUED, next_attempt_at__lt=now - late_after, service__tariff__processing_module__is_enabled=True
        ).values_list("pk", flat=True)
    )
    for operation_id in interrupted + late:
        _enqueue(operation_id)
    return len(interrupted), len(late)


def _expire(attempt: OperationAttempt, now) -> bool:
    """Take the claim from an attempt whose lease ran out and queue its operation again; False if it renewed meanwhile."""
    stopped = StoredText(
        gettext_noop("The worker %(worker)s stopped answering during attempt %(number)d."),
        {"worker": attempt.worker, "number": attempt.number},
    )
    with transaction.atomic():
        lock_objects(Operation.objects.filter(pk=attempt.operation_id))
        taken = OperationAttempt.objects.filter(pk=attempt.pk, outcome=AttemptOutcome.RUNNING, lease_until__lt=now).update(
            outcome=AttemptOutcome.EXPIRED, finished_at=now, duration=now - attempt.started_at, error=stopped
        )
        return bool(taken) and bool(
            Operation.objects.filter(pk=attempt.operation_id, status=OperationStatus.RUNNING).update(
                status=OperationStatus.QUEUED, next_attempt_at=now, last_error=stopped, updated_at=now
            )
        )


def module_check_connection(*, module: ProcessingModule, save: bool = True) -> CheckResult:
    """Ask the panel who we are to it; store what was found on the module."""
    result = module.get_backend(timeout=settings.PANEL_CHECK_TIMEOUT).check_connection()
    module.edition, module.caller_level, module.check_ok = result.edition, result.level, result.ok
    module.check_message, module.checked_at = result.message, timezone.now()
    if save:
        module.save(update_fields=["edition", "caller_level", "check_ok", "check_message", "checked_at"])
    return result


def module_enable(*, module: ProcessingModule, enabled: bool = True) -> ProcessingModule:
    """Put a module on sale and let its operations run again, or take it off sale and hold them."""
    if module.is_enabled == enabled:
        if enabled:
            raise NothingToDo(_("The module is already enabled: nothing was changed."), code="already")
        raise NothingToDo(_("The module is already disabled: nothing was changed."), code="already")
    module.is_enabled = enabled
    module.save(update_fields=["is_enabled"])
    if enabled:
        module_operations_resume(module=module)
    return module


def module_operations_resume(*, module: ProcessingModule) -> int:
    """Run the operations that waited while the module was disabled (each at its own time); returns how many."""
    waiting = Operation.objects.filter(status=OperationStatus.QUEUED, service__tariff__processing_module=module)
    rows = list(waiting.values_list("pk", "next_attempt_at"))
    for operation_id, next_attempt_at in rows:
        transaction.on_commit(partial(_enqueue, operation_id, run_after=next_attempt_at))
    return len(rows)
