"""Reconcile address statuses between IPmanager and billing (`manage.py sync_ips`).

- used in IPmanager but held by no live service in billing -> release it in IPmanager;
- held by a live service in billing but free in IPmanager -> mark it allocated in IPmanager.

Safety: the IPmanager list is read whole or the run stops before any change; a dry run only plans;
releases above a cap are refused unless forced; an address whose note is not billing's is released
only with administrator credentials and `release_foreign`. Every run and change is recorded.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.models import Service
from billing.stored_text import StoredText
from billing.webhooks.events import event_record
from billing.webhooks.models import EventType
from billing.webhooks.payloads import sync_run_payload
from ipam_sync.ipmanager.client import Address
from ipam_sync.models import IPAssignment, IPmanagerIntegration, SyncChange, SyncRun
from ipam_sync.services import ipmanager_client, is_ours, note_for, ptr_name
from provisioning.coremanager.errors import AccessDenied, NoSuchFunction, NotFound, PermanentError, ProvisioningError

RELEASE_BATCH = 100
# A run still "running" after this long died with its process; it no longer blocks the next one.
STALE_AFTER = timedelta(hours=2)
Action, Result = SyncChange.Action, SyncChange.Result
HELD_BY_A_SERVICE = StoredText(gettext_noop("held by a live service in billing"))
HELD_BY_NO_SERVICE = StoredText(gettext_noop("used in IPmanager, held by no service"))
ALREADY_FREE = StoredText(gettext_noop("already free"))


class SyncBusy(Exception):
    """Another run of the same integration is under way."""


@dataclass
class Plan:
    release: list[Address] = field(default_factory=list)
    allocate: list[tuple[str, str, str, str]] = field(default_factory=list)  # address, type, PTR name, note
    skipped: list[SyncChange] = field(default_factory=list)


def sync_ips_run(
    *,
    integration: IPmanagerIntegration,
    dry_run: bool = False,
    max_release: int,
    force: bool = False,
    release_foreign: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SyncRun:
    run = sync_ips_start(integration=integration, dry_run=dry_run)
    return sync_ips_continue(run=run, max_release=max_release, force=force, release_foreign=release_foreign, progress=progress)


def sync_ips_start(*, integration: IPmanagerIntegration, dry_run: bool = False) -> SyncRun:
    """Record a run of the integration now, without calling the panel (SyncBusy while another one is under way).

    The API answers with it at once; a task does the panel work with sync_ips_continue.
    """
    return _start(integration, dry_run=dry_run)


def sync_ips_continue(
    *,
    run: SyncRun,
    max_release: int,
    force: bool = False,
    release_foreign: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SyncRun:
    """Do the work of a run sync_ips_start recorded; a run no longer running (given up as stale) is left as it is."""
    if run.status != SyncRun.Status.RUNNING:
        return run
    try:
        return _run(run, max_release=max_release, force=force, release_foreign=release_foreign, progress=progress)
    except Exception as error:
        _finish(run, SyncRun.Status.FAILED, StoredText(gettext_noop("Stopped by an unexpected error: %(error)s"), {"error": repr(error)}))
        raise


def _start(integration: IPmanagerIntegration, *, dry_run: bool) -> SyncRun:
    SyncRun.objects.filter(integration=integration, status=SyncRun.Status.RUNNING, started_at__lt=timezone.now() - STALE_AFTER).update(
        status=SyncRun.Status.FAILED, finished_at=timezone.now(), message=StoredText(gettext_noop("The process running it stopped."))
    )
    try:
        with transaction.atomic():
            return SyncRun.objects.create(integration=integration, dry_run=dry_run, as_administrator=bool(integration.admin_username))
    except IntegrityError:
        raise SyncBusy(_("a sync of %(integration)s is already running") % {"integration": integration}) from None


def _run(run: SyncRun, *, max_release: int, force: bool, release_foreign: bool, progress) -> SyncRun:
    integration = run.integration
    client = ipmanager_client(integration, administrator=run.as_administrator)
    try:
        listed = client.addresses()
    except PermanentError as error:
        if not isinstance(error, NoSuchFunction):
            message = gettext_noop("The IPmanager list could not be read, nothing was changed: %(error)s")
            return _finish(run, SyncRun.Status.FAILED, StoredText(message, {"error": error.message}))
        # A dummy integration through ISPmanager Business hands out no addresses; an IPmanager whose list is named
        # otherwise needs the override, which the message names.
        message = gettext_noop(
            "This panel has no function %(func)s, so it hands out no addresses (a dummy integration): nothing to do. "
            "If it is an IPmanager, set the name of its address list under Advanced."
        )
        return _finish(run, SyncRun.Status.DONE, StoredText(message, {"func": client.functions["list"]}))
    except ProvisioningError as error:
        message = gettext_noop("The IPmanager list could not be read completely, nothing was changed: %(error)s")
        return _finish(run, SyncRun.Status.FAILED, StoredText(message, {"error": error.message}))
    run.listed = len(listed)
    plan = _plan(run, listed, release_foreign=release_foreign)
    if len(plan.release) > max_release and not force:
        _record(run, plan, Result.PLANNED, StoredText(gettext_noop("refused: above the release cap")))
        message = gettext_noop(
            "Addresses to release: %(count)d, more than the cap of %(cap)d: nothing was changed. "
            "Check the plan (--dry-run), then run again with --force or a higher --max-release."
        )
        return _finish(run, SyncRun.Status.REFUSED, StoredText(message, {"count": len(plan.release), "cap": max_release}))
    if run.dry_run:
        _record(run, plan, Result.PLANNED, StoredText(gettext_noop("dry run")))
        message = gettext_noop("Dry run: %(release)d to release, %(allocate)d to mark allocated.")
        return _finish(run, SyncRun.Status.DONE, StoredText(message, {"release": len(plan.release), "allocate": len(plan.allocate)}))
    # With administrator credentials an address marked allocated still belongs to billing's user.
    owner = integration.username if run.as_administrator else None
    changes = _apply(client, plan, owner, progress)
    for change in changes:
        change.run = run
    SyncChange.objects.bulk_create(plan.skipped + changes, batch_size=1000)
    run.released = sum(c.action == Action.RELEASE and c.result == Result.DONE for c in changes)
    run.allocated = sum(c.action == Action.ALLOCATE and c.result == Result.DONE for c in changes)
    run.failed = sum(c.result == Result.FAILED for c in changes)
    summary = gettext_noop("Released %(released)d, marked allocated %(allocated)d, skipped %(skipped)d, failed %(failed)d.")
    counts = {"released": run.released, "allocated": run.allocated, "skipped": run.skipped, "failed": run.failed}
    return _finish(run, SyncRun.Status.DONE, StoredText(summary, counts))


def _plan(run: SyncRun, listed: list[Address], *, release_foreign: bool) -> Plan:
    integration = run.integration
    ignored = set(integration.ignored_ip_types) if integration.ignore_ip_types else set()
    panel = {address.ip: address for address in listed if address.iptype not in ignored}
    held = (
        IPAssignment.objects.filter(integration=integration, released_at__isnull=True)
        .exclude(ip_type__in=ignored)
        .values_list("address", "ip_type", "service_id")
    )
    billing = {address: (ip_type, service_id) for address, ip_type, service_id in held.iterator(chunk_size=5000)}
    plan = Plan()
    for ip, address in panel.items():
        if ip in billing:
            continue
        # An administrator sees every user's addresses: billing's note is not enough, the address must
        # also belong to this integration's user (another integration's may be live there).
        ours = is_ours(address.note) and address.owner in ("", integration.username)
        if ours or (release_foreign and run.as_administrator):
            plan.release.append(address)
        else:
            reason = StoredText(
                gettext_noop(
                    "not taken by this billing (note: %(note)s): released only with administrator credentials and --release-foreign"
                ),
                {"note": address.note or StoredText(gettext_noop("none"))},
            )
            plan.skipped.append(SyncChange(run=run, action=Action.RELEASE, address=ip, result=Result.SKIPPED, reason=reason))
    missing = [(ip, ip_type, service_id) for ip, (ip_type, service_id) in billing.items() if ip not in panel]
    # Only the addresses to mark allocated need their service's domain (the PTR): one more query.
    domains = dict(Service.objects.filter(pk__in={service_id for *_, service_id in missing}).values_list("pk", "domain"))
    plan.allocate = [(ip, ip_type, ptr_name(domains[service_id]), note_for(service_id)) for ip, ip_type, service_id in missing]
    run.skipped = len(plan.skipped)
    return plan


def _apply(client, plan: Plan, owner: str | None, progress) -> list[SyncChange]:
    total, done, changes = len(plan.release) + len(plan.allocate), 0, []
    for start in range(0, len(plan.release), RELEASE_BATCH):
        batch = plan.release[start : start + RELEASE_BATCH]
        changes += _release(client, [address.ip for address in batch])
        done += len(batch)
        if progress:
            progress(done, total)
    for ip, ip_type, domain, note in plan.allocate:
        try:
            client.allocate(ip=ip, iptype=ip_type, domain=domain, note=note, owner=owner)
            changes.append(SyncChange(action=Action.ALLOCATE, address=ip, result=Result.DONE, reason=HELD_BY_A_SERVICE))
        except ProvisioningError as error:
            changes.append(SyncChange(action=Action.ALLOCATE, address=ip, result=Result.FAILED, reason=_why(error)))
        done += 1
        if progress and done % RELEASE_BATCH == 0:
            progress(done, total)
    if progress:
        progress(total, total)
    return changes


def _release(client, ips: list[str]) -> list[SyncChange]:
    """Release a batch in one call; when the panel refuses the batch, address by address."""
    try:
        client.release(*ips)
        return [SyncChange(action=Action.RELEASE, address=ip, result=Result.DONE, reason=HELD_BY_NO_SERVICE) for ip in ips]
    except ProvisioningError:
        pass
    changes = []
    for ip in ips:
        try:
            client.release(ip)
            changes.append(SyncChange(action=Action.RELEASE, address=ip, result=Result.DONE, reason=HELD_BY_NO_SERVICE))
        except PermanentError as error:
            if isinstance(error, NotFound):
                changes.append(SyncChange(action=Action.RELEASE, address=ip, result=Result.DONE, reason=ALREADY_FREE))
            else:
                changes.append(SyncChange(action=Action.RELEASE, address=ip, result=Result.FAILED, reason=_why(error)))
        except ProvisioningError as error:
            changes.append(SyncChange(action=Action.RELEASE, address=ip, result=Result.FAILED, reason=_why(error)))
    return changes


def _why(error: ProvisioningError) -> StoredText:
    if isinstance(error, AccessDenied):
        message = gettext_noop("insufficient permission: %(error)s (give administrator credentials to change it)")
        return StoredText(message, {"error": error.message})
    return error.message  # already a stored text: our words as a msgid, the panel's verbatim


def _record(run: SyncRun, plan: Plan, result: str, reason: StoredText) -> None:
    planned = [SyncChange(run=run, action=Action.RELEASE, address=a.ip, result=result, reason=reason) for a in plan.release]
    planned += [SyncChange(run=run, action=Action.ALLOCATE, address=ip, result=result, reason=reason) for ip, *_ in plan.allocate]
    SyncChange.objects.bulk_create(plan.skipped + planned, batch_size=1000)


def _finish(run: SyncRun, status: str, message: StoredText) -> SyncRun:
    run.status, run.message, run.finished_at = status, message, timezone.now()
    with transaction.atomic():
        run.save()
        event_record(EventType.SYNC_FINISHED, sync_run_payload(run))  # a dry run too, with dry_run in its data
    return run
