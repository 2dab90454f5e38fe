"""Compare an ISPmanager module's accounts with billing's services (`manage.py sync_accounts`).

What is read how. The user list (`func=user`, every page, one pass) gives each account's login and
state: enough for an account that is missing and a state that differs. Billing's marker (`Service #ID`
in the full name) and the limits are only in a user's form (`user.edit`, one call per account), so a
form is read only where it answers a question: the account a live service claims (is it still ours,
are its limits the tariff's) and an account no service claims (is it marked as ours: an orphan?).
`list_only` reads forms only for the accounts whose state differs, to make sure they are ours before a
fix is proposed. Each template is read once (`preset.edit`). Forms are read by a few threads
(SYNC_ACCOUNTS_READERS), with no database transaction open. Billing's side is read with a fixed
number of queries, however many services there are.

Safety: a list or a form that cannot be read (a transient failure is tried twice) fails the run
before anything is recorded or queued. A dry run records what it found. Applying queues only resume,
suspend and set_limits, which make the panel match billing, through the operation queue, each after
the service was checked again under its row lock; nothing deletes an account, creates one or touches
money. A difference staff dismissed stays dismissed while the same difference persists.
"""

import hashlib
import json
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.choices import PanelAction, ServiceStatus, SuspendReason
from billing.locks import lock_objects
from billing.models import Service, ServiceResource
from billing.services import NothingToDo
from billing.stored_text import StoredText
from provisioning.choices import PENDING_OPERATION_STATUSES, ModuleKind
from provisioning.coremanager.check import sentences
from provisioning.coremanager.errors import ProvisioningError, TransientError
from provisioning.ispmanager.client import active_of, limits_of
from provisioning.models import AccountSyncFinding, AccountSyncRun, Operation, ProcessingModule
from provisioning.modules.ispmanager5 import not_the_services, panel_limits
from provisioning.services import operation_request

logger = logging.getLogger(__name__)
Kind, State = AccountSyncFinding.Kind, AccountSyncFinding.State
# A run still "running" after this long died with its process; it no longer blocks the next one.
STALE_AFTER = timedelta(hours=6)
# Services that must have an account; those on their way (being opened, failed, or with an operation
# queued) are left to the operation queue and only keep their account from being called an orphan.
LIVE = (ServiceStatus.ACTIVE, ServiceStatus.SUSPENDED)
KNOWN = (*LIVE, ServiceStatus.PROCESSING, ServiceStatus.FAILED)
# account_marker()'s format, read back from a full name.
MARKER = re.compile(r"Service #(\d+)")
FORM_TRIES = 2
UNLIMITED = "∞"
DISMISSED_EARLIER = StoredText(gettext_noop("dismissed earlier: the same difference as then"))


class SyncBusy(Exception):
    """Another run of the same module is under way."""


@dataclass(frozen=True)
class Billed:
    """A service as billing has it, read for the whole module at once."""

    pk: int
    status: str
    suspend_reason: str
    login: str
    template: str
    busy: bool


class _Resources(list):
    """A service's resources in the shape panel_limits reads (`service.resources.all()`), without a query per service."""

    @property
    def resources(self):
        return self

    def all(self):
        return self


def ispmanager_modules():
    return ProcessingModule.objects.filter(kind=ModuleKind.ISPMANAGER5).order_by("name")


def sync_accounts_run(
    *, module: ProcessingModule, dry_run: bool = True, list_only: bool = False, readers: int | None = None
) -> AccountSyncRun:
    run = _start(module, dry_run=dry_run, list_only=list_only)
    try:
        return _run(run, readers or settings.SYNC_ACCOUNTS_READERS)
    except Exception as error:
        # A reply of a shape no document promised (or a fault of ours): the run is recorded as failed, and
        # the command reports it, goes on with the next module and exits non-zero instead of dying here.
        logger.exception("the account sync of %s stopped", module)
        stopped = StoredText(gettext_noop("Stopped by an unexpected error: %(error)s"), {"error": repr(error)})
        return _finish(run, AccountSyncRun.Status.FAILED, stopped)


def _start(module: ProcessingModule, *, dry_run: bool, list_only: bool) -> AccountSyncRun:
    now = timezone.now()
    AccountSyncRun.objects.filter(module=module, status=AccountSyncRun.Status.RUNNING, started_at__lt=now - STALE_AFTER).update(
        status=AccountSyncRun.Status.FAILED, finished_at=now, message=StoredText(gettext_noop("The process running it stopped."))
    )
    try:
        with transaction.atomic():
            return AccountSyncRun.objects.create(module=module, dry_run=dry_run, list_only=list_only)
    except IntegrityError:
        raise SyncBusy(_("an account sync of %(module)s is already running") % {"module": module}) from None


def _run(run: AccountSyncRun, readers: int) -> AccountSyncRun:
    module = run.module
    client = module.get_backend().client
    try:
        panel = {row["name"]: row for row in client.users() if row.get("name")}
    except ProvisioningError as error:
        message = gettext_noop("The panel's user list could not be read completely, nothing was compared: %(error)s")
        return _finish(run, AccountSyncRun.Status.FAILED, StoredText(message, {"error": error.message}))
    billed = _billed(module)
    live = [service for service in billed.values() if service.status in LIVE and not service.busy]
    run.accounts, run.services, run.in_flight = len(panel), len(live), len(billed) - len(live)
    findings, listed = [], []
    for service in live:
        row = panel.get(service.login) if service.login else None
        if row is None:
            findings.append(_missing(service))
        elif not run.list_only or _state_finding(service, row):
            listed.append((service, row))
    claimed = {service.login for service in billed.values() if service.login} | _claimed_by_siblings(module)
    unclaimed = [] if run.list_only else [login for login in panel if login not in claimed]
    try:
        forms = _read_forms(module, [service.login for service, _ in listed] + unclaimed, readers)
        templates = {} if run.list_only else {name: client.preset(name) or {} for name in {service.template for service, _ in listed}}
    except ProvisioningError as error:
        message = gettext_noop("Accounts could not be read one by one, nothing was recorded or queued: %(error)s")
        return _finish(run, AccountSyncRun.Status.FAILED, StoredText(message, {"error": error.message}))
    run.forms_read = len(forms)
    resources = None if run.list_only else _resources(module)
    compared, unverified = _compare(module, listed, forms, templates, resources)
    orphans, unmarked = _orphans(unclaimed, forms, billed)
    findings += compared + orphans
    _record(run, findings)
    if not run.dry_run:
        run.queued = _apply(findings)
    return _finish(run, AccountSyncRun.Status.DONE, _summary(run, findings, unverified + unmarked))


def _compare(
    module: ProcessingModule, listed: list, forms: dict, templates: dict, resources: dict | None
) -> tuple[list[AccountSyncFinding], int]:
    """The accounts live services claim, each against its service; limits only when `resources` were read.

    Also how many accounts could not be told ours or not (the panel shows neither full name nor owner).
    """
    findings, unverified = [], 0
    for service, row in listed:
        form = forms[service.login]
        if form is None:  # deleted between the list and the form
            findings.append(_missing(service))
            continue
        if "fullname" not in form and not (row.get("owner") or form.get("owner")):
            unverified += 1
        if foreign := _foreign(module, service, form, row):
            findings.append(foreign)  # not ours: nothing else about it is billing's business
            continue
        findings += filter(None, [_state_finding(service, row)])
        if resources is not None:
            expected = panel_limits(templates[service.template], _Resources(resources.get(service.pk, [])))
            findings += filter(None, [_limits_finding(service, expected, limits_of(form))])
    return findings, unverified


def _apply(findings: list[AccountSyncFinding]) -> int:
    """Queue every open finding's fix; how many were queued."""
    return sum(_queue(finding) is None for finding in findings if finding.fix and finding.state == State.OPEN)


def _billed(module: ProcessingModule) -> dict[int, Billed]:
    pending = Operation.objects.filter(service=OuterRef("pk"), status__in=PENDING_OPERATION_STATUSES)
    rows = (
        Service.objects.filter(tariff__processing_module=module, status__in=KNOWN)
        .annotate(busy=Exists(pending))
        .values_list("pk", "status", "suspend_reason", "panel_username", "tariff__account_template", "busy")
        .order_by("pk")
    )
    return {row[0]: Billed(*row) for row in rows.iterator(chunk_size=5000)}


def _claimed_by_siblings(module: ProcessingModule) -> set[str]:
    """Logins of the services of other modules on the same panel (say, shared hosting and FTP storage): theirs, not orphans."""
    siblings = Service.objects.filter(tariff__processing_module__url=module.url, status__in=KNOWN).exclude(tariff__processing_module=module)
    return set(siblings.exclude(panel_username="").values_list("panel_username", flat=True).iterator(chunk_size=5000))


def _resources(module: ProcessingModule) -> dict[int, _Resources]:
    """Every live service's resources in one query (joined, not an IN list that grows with the services)."""
    by_service: dict[int, _Resources] = {}
    rows = ServiceResource.objects.filter(service__tariff__processing_module=module, service__status__in=LIVE).only(
        "service_id", "kind", "quantity"
    )
    for resource in rows.iterator(chunk_size=5000):
        by_service.setdefault(resource.service_id, _Resources()).append(resource)
    return by_service


def _read_forms(module: ProcessingModule, logins: list[str], readers: int) -> dict[str, dict | None]:
    """Each login's `user.edit` form (None: no such user now), read by `readers` threads, each with its own connection.

    The first error that a second try does not cure stops the reading: what was not read yet is not asked.
    """
    local = threading.local()

    def read(login: str) -> dict | None:
        if not hasattr(local, "client"):
            local.client = module.get_backend().client
        for attempt in range(1, FORM_TRIES + 1):
            try:
                return local.client.user(login)
            except TransientError:
                if attempt == FORM_TRIES:
                    raise
        return None  # not reached: the last try returns or raises

    forms = {}
    with ThreadPoolExecutor(max_workers=max(1, readers)) as pool:
        futures = {pool.submit(read, login): login for login in logins}
        try:
            for future in as_completed(futures):
                forms[futures[future]] = future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return forms


def _status_label(status: str) -> StoredText:
    with translation.override(None):  # the label's msgid, translated when the text is read
        return StoredText(str(ServiceStatus(status).label))


def _state_word(active: bool) -> StoredText:
    return StoredText(gettext_noop("active") if active else gettext_noop("suspended"))


def _finding(kind: str, service: Billed | None, login: str, details: StoredText, fix: str = "") -> AccountSyncFinding:
    service_id = service.pk if service else None
    raw = json.dumps(details.to_json(), sort_keys=True, ensure_ascii=False)
    signature = hashlib.sha256(f"{kind}|{login}|{service_id}|{raw}".encode()).hexdigest()
    return AccountSyncFinding(
        kind=kind,
        service_id=service_id,
        login=login[:100],
        billing_status=service.status if service else "",
        details=details,
        fix=fix,
        signature=signature,
    )


def _missing(service: Billed) -> AccountSyncFinding:
    if not service.login:
        return _finding(Kind.MISSING, service, "", StoredText(gettext_noop("Billing has no panel login for this service.")))
    details = StoredText(gettext_noop("The panel has no account %(login)s."), {"login": service.login})
    return _finding(Kind.MISSING, service, service.login, details)


def _state_finding(service: Billed, row: dict) -> AccountSyncFinding | None:
    active = active_of(row)
    if active is None or (service.status == ServiceStatus.ACTIVE) == active:
        return None  # equal, or the list does not tell the state: a guess must never suspend or resume an account
    details = StoredText(
        gettext_noop("Billing says %(billing)s, the panel says %(panel)s."),
        {"billing": _status_label(service.status), "panel": _state_word(active)},
    )
    fix = PanelAction.RESUME if service.status == ServiceStatus.ACTIVE else PanelAction.SUSPEND
    return _finding(Kind.STATUS, service, service.login, details, fix)


def _foreign(module: ProcessingModule, service: Billed, form: dict, row: dict) -> AccountSyncFinding | None:
    """The account at the service's login when it is not the service's: another marker, or (no full name shown) another owner."""
    details = not_the_services(module, service, service.login, form, row)
    return _finding(Kind.FOREIGN, service, service.login, details) if details is not None else None


def _same_limit(panel: str, billing: str) -> bool:
    panel, billing = panel.strip(), billing.strip()
    if panel.isdigit() and billing.isdigit():
        return int(panel) == int(billing)
    return panel.lower() == billing.lower()


def _limits_finding(service: Billed, expected: dict, actual: dict) -> AccountSyncFinding | None:
    """Only the limits billing sets are compared: those are what set_limits would send."""
    differ = [
        f"{name} {actual.get(name) or UNLIMITED} → {expected[name] or UNLIMITED}"
        for name in sorted(expected)
        if not _same_limit(actual.get(name, ""), expected[name])
    ]
    if not differ:
        return None
    details = StoredText(
        gettext_noop("The panel's limits differ from the tariff and resources (panel → billing): %(limits)s."),
        {"limits": ", ".join(differ)},
    )
    return _finding(Kind.LIMITS, service, service.login, details, PanelAction.SET_LIMITS)


def _orphans(unclaimed: list[str], forms: dict, billed: dict[int, Billed]) -> tuple[list[AccountSyncFinding], int]:
    """Accounts no service claims that carry billing's marker; and how many could not be told (no full name shown)."""
    findings, unmarked, strangers = [], 0, {}
    for login in unclaimed:
        form = forms.get(login)
        if form is None:
            continue
        if "fullname" not in form:
            unmarked += 1
            continue
        match = MARKER.fullmatch(form["fullname"].strip())
        if not match:
            continue  # not billing's: made by hand or by someone else
        service = billed.get(int(match[1]))
        if service is None:
            strangers[login] = int(match[1])
        elif service.status in LIVE and not service.busy:
            details = StoredText(
                gettext_noop("Marked as service #%(id)d, whose account is %(other)s: a second account of one service."),
                {"id": service.pk, "other": service.login or "-"},
            )
            findings.append(_finding(Kind.ORPHAN, None, login, details))
        # A service being opened or that failed may have made this account: the operation queue settles it.
    findings += _strangers(strangers)
    return findings, unmarked


def _strangers(strangers: dict[str, int]) -> list[AccountSyncFinding]:
    """Marked accounts whose service is not one of this module's known ones: gone, never paid, or another module's."""
    if not strangers:
        return []
    services = {
        pk: (status, module_name)
        for pk, status, module_name in Service.objects.filter(pk__in=set(strangers.values())).values_list(
            "pk", "status", "tariff__processing_module__name"
        )
    }
    findings = []
    for login, service_id in strangers.items():
        if service_id not in services:
            details = StoredText(gettext_noop("Marked as service #%(id)d, which does not exist."), {"id": service_id})
        elif services[service_id][0] in (ServiceStatus.DELETED, ServiceStatus.ORDERED):
            details = StoredText(
                gettext_noop("Marked as service #%(id)d, which is %(status)s."),
                {"id": service_id, "status": _status_label(services[service_id][0])},
            )
        else:
            details = StoredText(
                gettext_noop("Marked as service #%(id)d, which belongs to processing module %(module)s."),
                {"id": service_id, "module": services[service_id][1]},
            )
        findings.append(_finding(Kind.ORPHAN, None, login, details))
    return findings


def _record(run: AccountSyncRun, findings: list[AccountSyncFinding]) -> None:
    dismissed = set(
        AccountSyncFinding.objects.filter(run__module=run.module, state=State.DISMISSED).values_list("signature", flat=True).distinct()
    )
    for finding in findings:
        finding.run = run
        if finding.signature in dismissed:
            finding.state, finding.note = State.DISMISSED, DISMISSED_EARLIER
    AccountSyncFinding.objects.bulk_create(findings, batch_size=1000)
    run.found = len(findings)


def _queue(finding: AccountSyncFinding, by=None) -> StoredText | None:
    """Queue the finding's fix while the service is as the run found it; None when queued, else why not (kept as its note)."""
    reason = StoredText(gettext_noop("the panel differs from billing (account sync finding #%(id)d)"), {"id": finding.pk})
    refusal = None
    try:
        with transaction.atomic():
            locked = lock_objects(Service.objects.filter(pk=finding.service_id))[0]
            service = locked[0] if locked else None
            if service is None or service.status != finding.billing_status:
                now = _status_label(service.status) if service else "-"
                message = gettext_noop("Not queued: service #%(id)d is %(now)s now, not %(then)s as the run found it.")
                refusal = StoredText(message, {"id": finding.service_id, "now": now, "then": _status_label(finding.billing_status)})
            elif Operation.objects.filter(service=service, status__in=PENDING_OPERATION_STATUSES).exists():
                refusal = _busy(service.pk)
            elif not AccountSyncFinding.objects.filter(pk=finding.pk, state=State.OPEN).update(state=State.QUEUED):
                return StoredText(gettext_noop("Not queued: the finding is no longer open."))  # queued or dismissed meanwhile
            else:
                payload = {"suspend_reason": service.suspend_reason or SuspendReason.STAFF} if finding.fix == PanelAction.SUSPEND else {}
                operation = operation_request(service=service, action=finding.fix, requested_by=by, reason=reason, payload=payload)
                finding.state, finding.operation, finding.note = State.QUEUED, operation, ""
                finding.resolved_by, finding.resolved_at = by, timezone.now()
                finding.save(update_fields=["state", "operation", "note", "resolved_by", "resolved_at"])
    except ValidationError:  # operation_request: another request queued an operation meanwhile
        refusal = _busy(finding.service_id)
    if refusal is not None:
        finding.note = refusal
        AccountSyncFinding.objects.filter(pk=finding.pk).update(note=refusal)
    return refusal


def _busy(service_id: int) -> StoredText:
    return StoredText(gettext_noop("Not queued: service #%(id)d has another operation on its way."), {"id": service_id})


def _summary(run: AccountSyncRun, findings: list[AccountSyncFinding], unverified: int) -> StoredText:
    counts = dict.fromkeys(Kind.values, 0)
    for finding in findings:
        counts[finding.kind] += 1
    found = StoredText(
        gettext_noop(
            "%(missing)d missing, %(orphan)d orphaned, %(status)d with another status, %(limits)d with other limits, "
            "%(foreign)d someone else's."
        ),
        counts,
    )
    fixable = sum(finding.fix != "" and finding.state == State.OPEN for finding in findings) + run.queued
    if run.dry_run:
        outcome = StoredText(
            gettext_noop("Dry run: %(found)s Fixes --apply would queue: %(fixable)d."), {"found": found, "fixable": fixable}
        )
    else:
        outcome = StoredText(
            gettext_noop("%(found)s Fixes queued: %(queued)d of %(fixable)d."), {"found": found, "queued": run.queued, "fixable": fixable}
        )
    notes = []
    if run.list_only:
        notes.append(StoredText(gettext_noop("List only: limits, markers and orphans were not checked.")))
    if unverified:
        message = gettext_noop(
            "The panel shows neither full name nor owner of %(count)d accounts: whether they are billing's was not checked."
        )
        notes.append(StoredText(message, {"count": unverified}))
    return sentences(outcome, *notes)


def _finish(run: AccountSyncRun, status: str, message: StoredText) -> AccountSyncRun:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    run.save()
    return run


# Staff's actions on a finding (admin).


def finding_fix_queue(*, finding: AccountSyncFinding, by=None) -> AccountSyncFinding:
    """Queue the safe fix of an open finding of its module's latest finished run."""
    if finding.state == State.QUEUED:
        raise NothingToDo(_("The fix is already queued."), code="already")
    if finding.state == State.DISMISSED:
        raise ValidationError(_("This finding was dismissed: nothing is queued."), code="dismissed")
    if not finding.fix:
        raise ValidationError(_("No safe fix: a sync never creates or deletes an account. Deal with it in the panel."), code="no_fix")
    finished = AccountSyncRun.objects.filter(module_id=finding.run.module_id, status=AccountSyncRun.Status.DONE)
    if finding.run_id != finished.order_by("-started_at", "-pk").values_list("pk", flat=True).first():
        raise ValidationError(_("A later run of this module exists: queue fixes from its findings."), code="stale")
    refusal = _queue(finding, by=by)
    if refusal is not None:
        raise ValidationError(str(refusal), code="refused")
    return finding


def finding_dismiss(*, finding: AccountSyncFinding, by=None) -> AccountSyncFinding:
    """Staff know about this difference: it is not fixed, now or by later runs while it stays the same."""
    dismissed = AccountSyncFinding.objects.filter(pk=finding.pk, state=State.OPEN).update(
        state=State.DISMISSED, resolved_by=by, resolved_at=timezone.now()
    )
    if not dismissed:
        raise NothingToDo(_("Only an open finding can be dismissed: this one is “%(state)s”.") % {"state": finding.get_state_display()})
    finding.refresh_from_db()
    return finding
