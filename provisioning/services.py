"""Panel operations: asking for them, running them with retries, and the staff queue.

Panel calls happen only in `operation_run` (a background task), outside any database
transaction, and in `module_check_connection`. Billing state changes after the panel confirmed.
"""

import logging
import secrets
import string
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.choices import PanelAction, ServiceStatus
from billing.models import Service
from billing.services import service_status_change
from ipam_sync.services import service_ips_allocate, service_ips_release, wanted_ips
from provisioning.choices import PENDING_OPERATION_STATUSES, OperationStatus
from provisioning.errors import PermanentError, ProvisioningError, TransientError
from provisioning.models import Operation, ProcessingModule
from provisioning.modules.base import CheckResult, backend_for

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


def operation_request(*, service: Service, action: str, requested_by=None, reason: str = "", payload: dict | None = None) -> Operation:
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
        raise ValidationError(
            _("Service #%(id)d already has an operation in progress: wait for it to finish.") % {"id": service.pk},
            code="busy",
        ) from None
    transaction.on_commit(partial(_enqueue, operation.pk))
    return operation


def _enqueue(operation_id: int, run_after=None) -> None:
    from provisioning.tasks import run_operation

    if run_after and run_operation.get_backend().supports_defer:
        run_operation.using(run_after=run_after).enqueue(operation_id)
    else:
        run_operation.enqueue(operation_id)


def operation_run(*, operation_id: int) -> Operation | None:
    """Run one attempt of a queued operation; None when another worker has it or it is not queued."""
    now = timezone.now()
    claimed = Operation.objects.filter(pk=operation_id, status=OperationStatus.QUEUED).update(
        status=OperationStatus.RUNNING, attempts=F("attempts") + 1, started_at=now, updated_at=now
    )
    if not claimed:
        return None
    operation = (
        Operation.objects.select_related("service__tariff__processing_module__ipmanager", "service__ordered_by")
        .prefetch_related("service__resources")
        .get(pk=operation_id)
    )
    try:
        outcome = _perform(operation)
    except ProvisioningError as error:
        return _attempt_failed(operation, error)
    except Exception as error:
        logger.exception("operation %s failed unexpectedly", operation_id)
        return _attempt_failed(operation, PermanentError(f"unexpected error: {error!r}"))
    return _succeeded(operation, outcome)


def _open(backend, service: Service, password: str) -> str:
    # Addresses first: when IPmanager cannot give them, no account has been made in the panel.
    addresses = service_ips_allocate(service=service) if wanted_ips(service) else []
    login = backend.open(service, password=password)
    if addresses:
        backend.assign_ips(service, login=login, addresses=addresses)
    return login


def _close(backend, service: Service) -> None:
    backend.close(service)
    service_ips_release(service=service)


def _perform(operation: Operation):
    service = operation.service
    backend = backend_for(service.tariff.processing_module)
    actions = {
        PanelAction.OPEN: lambda: _open(backend, service, operation.secret),
        PanelAction.SUSPEND: lambda: backend.suspend(service),
        PanelAction.RESUME: lambda: backend.resume(service),
        PanelAction.CLOSE: lambda: _close(backend, service),
        PanelAction.SET_LIMITS: lambda: backend.set_limits(service),
        PanelAction.CHANGE_PASSWORD: lambda: backend.change_password(service, password=operation.secret),
        PanelAction.SYNC: lambda: backend.sync(service),
    }
    return actions[operation.action]()


@transaction.atomic
def _succeeded(operation: Operation, outcome) -> Operation:
    service = Service.objects.select_for_update().get(pk=operation.service_id)
    by, reason = operation.requested_by, operation.reason
    match operation.action:
        case PanelAction.OPEN:
            service.panel_username, service.panel_password = outcome, operation.secret
            service.save(update_fields=["panel_username", "panel_password", "updated_at"])
            operation.result = _("Account %(login)s created.") % {"login": outcome}
            service_status_change(service=service, to=ServiceStatus.ACTIVE, by=by, reason=operation.result)
            transaction.on_commit(partial(_notify_client_active, service.pk))
        case PanelAction.SUSPEND:
            suspend_reason = operation.payload.get("suspend_reason", "")
            service_status_change(service=service, to=ServiceStatus.SUSPENDED, by=by, reason=reason, suspend_reason=suspend_reason)
        case PanelAction.RESUME:
            service_status_change(service=service, to=ServiceStatus.ACTIVE, by=by, reason=reason)
        case PanelAction.CLOSE:
            service_status_change(service=service, to=ServiceStatus.DELETED, by=by, reason=reason)
        case PanelAction.CHANGE_PASSWORD:
            service.panel_password = operation.secret
            service.save(update_fields=["panel_password", "updated_at"])
        case PanelAction.SYNC:
            operation.result = _sync_result(service, outcome, by)
    operation.status, operation.finished_at, operation.last_error, operation.secret = OperationStatus.DONE, timezone.now(), "", None
    operation.save()
    return operation


def _sync_result(service: Service, account, by) -> str:
    """Bring the service's status in line with what the panel says, and say what was found."""
    if not account.exists:
        return _("The account %(login)s does not exist in the panel.") % {"login": service.panel_username or "-"}
    wanted = ServiceStatus.ACTIVE if account.active else ServiceStatus.SUSPENDED
    if service.status in (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED, ServiceStatus.FAILED) and service.status != wanted:
        service_status_change(service=service, to=wanted, by=by, reason=_("the panel reports this state"))
    limits = ", ".join(f"{name}={value or '∞'}" for name, value in sorted(account.limits.items()))
    state = _("active") if account.active else _("suspended")
    return f"{service.panel_username}: {state}; {limits}"


def _attempt_failed(operation: Operation, error: ProvisioningError) -> Operation:
    if isinstance(error, TransientError) and operation.attempts < settings.PROVISIONING_MAX_ATTEMPTS:
        delay = timedelta(seconds=settings.PROVISIONING_RETRY_SECONDS * 2 ** (operation.attempts - 1))
        operation.status, operation.last_error = OperationStatus.QUEUED, error.message
        operation.next_attempt_at = timezone.now() + delay
        operation.save(update_fields=["status", "last_error", "next_attempt_at", "updated_at"])
        _enqueue(operation.pk, run_after=operation.next_attempt_at)
        return operation
    with transaction.atomic():
        operation.status, operation.last_error, operation.finished_at = OperationStatus.FAILED, error.message, timezone.now()
        operation.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
        if operation.action == PanelAction.OPEN:
            service = Service.objects.select_for_update().get(pk=operation.service_id)
            service_status_change(service=service, to=ServiceStatus.FAILED, by=operation.requested_by, reason=error.message)
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


@transaction.atomic
def operation_retry(*, operation: Operation, by=None) -> Operation:
    """Put a failed operation back in the queue, from its first attempt."""
    locked = Operation.objects.select_for_update().get(pk=operation.pk)
    if locked.status != OperationStatus.FAILED:
        raise ValidationError(_("Only a failed operation can be retried."), code="not_failed")
    if Operation.objects.filter(service_id=locked.service_id, status__in=PENDING_OPERATION_STATUSES).exists():
        raise ValidationError(_("Service #%(id)d already has an operation in progress.") % {"id": locked.service_id}, code="busy")
    locked.status, locked.attempts, locked.next_attempt_at = OperationStatus.QUEUED, 0, timezone.now()
    locked.resolved_at = locked.resolved_by = None
    locked.save()
    if locked.action == PanelAction.OPEN:
        service = Service.objects.select_for_update().get(pk=locked.service_id)
        if service.status == ServiceStatus.FAILED:
            service_status_change(service=service, to=ServiceStatus.PROCESSING, by=by, reason=_("retried by staff"))
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


def operations_recover(*, stuck_after: timedelta, late_after: timedelta) -> tuple[int, int]:
    """Requeue what a dead worker or a lost task left behind; returns (stuck, late) counts.

    An attempt running for longer than any panel call can take belonged to a worker that died;
    a queued operation long past its time lost its task (say, a crash right after the commit).
    Running either again is safe: every panel action is idempotent and each attempt is claimed.
    """
    now = timezone.now()
    stuck = list(Operation.objects.filter(status=OperationStatus.RUNNING, started_at__lt=now - stuck_after).values_list("pk", flat=True))
    Operation.objects.filter(pk__in=stuck, status=OperationStatus.RUNNING).update(
        status=OperationStatus.QUEUED, next_attempt_at=now, last_error=_("The worker stopped during the attempt."), updated_at=now
    )
    late = list(Operation.objects.filter(status=OperationStatus.QUEUED, next_attempt_at__lt=now - late_after).values_list("pk", flat=True))
    for operation_id in stuck + late:
        _enqueue(operation_id)
    return len(stuck), len(late)


def module_check_connection(*, module: ProcessingModule, save: bool = True) -> CheckResult:
    """Ask the panel who we are to it; store what was found on the module."""
    result = backend_for(module, timeout=settings.PANEL_CHECK_TIMEOUT).check_connection()
    module.edition, module.caller_level, module.check_ok = result.edition, result.level, result.ok
    module.check_message, module.checked_at = result.message, timezone.now()
    if save:
        module.save(update_fields=["edition", "caller_level", "check_ok", "check_message", "checked_at"])
    return result
