"""The daily billing run: renew from the balance, send notices, suspend for non-payment, resume what is paid, delete.

`billing_run(day)` is `manage.py billing_daily`. For each date it selects, with indexed queries, the
services that may have something to do (`due_q`) and plans each one with `service_plan`, a pure
function of the service, the date and the balance: a dry run records exactly what a run would do.

Safety comes from the rows, not from the process:
- each service is handled in its own transaction with its row locked; what the run did is written in
  the same transaction (a `BillingRunItem`), so a run that died is finished by running the date again;
- every step is idempotent by itself: a renewal moves the expiry (and its charge has a key per period
  end), a notice has a key per service, kind and date, a suspension or deletion is one pending
  operation; a run renews a service at most once, even when it is more than a period behind;
- one real run per date (a unique row) holds a lease it renews as it goes: a second process for that
  date stops while the lease lasts. Other processes may `join` a running run: they take the services
  no one holds (SKIP LOCKED on PostgreSQL), and the run takes the rest, waiting for what others hold.
Only services suspended for non-payment are renewed, resumed or deleted by the run: a suspension by
staff, for abuse or by the client stays as it is.
"""

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext_noop

from billing.choices import BillingAction, BillingOutcome, BillingRunStatus, NotificationKind, PanelAction, ServiceStatus, SuspendReason
from billing.cycle_rules import CycleRules, day_start, local_date, today
from billing.models import BillingRun, BillingRunItem, LedgerEntry, Notification, Service
from billing.notifications import notify
from billing.periods import period_end_after
from billing.selectors import client_balance, service_pending_action
from billing.services import MAX_RENEW_PERIODS, InsufficientFunds, NothingToDo, service_action_request, service_renew
from billing.stored_text import Day, Money, StoredText
from billing.webhooks.events import event_record
from billing.webhooks.models import EventType
from billing.webhooks.payloads import billing_run_payload
from provisioning.choices import PENDING_OPERATION_STATUSES
from provisioning.models import Operation

logger = logging.getLogger(__name__)

# Services planned together: their balances, pending operations and notices are read in one query each.
CHUNK = 500
_S, _A = ServiceStatus, BillingAction


class RunInProgress(Exception):
    def __init__(self, run: BillingRun):
        self.run = run
        super().__init__(f"a billing run for {run.day} is in progress ({run.worker}, lease until {run.lease_until:%H:%M:%S})")


class RunLost(Exception):
    """The lease ran out and another process took the date over: this one stops."""


@dataclass(frozen=True)
class Step:
    action: str  # BillingAction
    notice: str = ""  # NotificationKind of a notice
    periods: int = 1  # periods a renewal pays for


def periods_past(service: Service, day: date) -> int:
    """How many periods from the service's expiry pay for `day` (at least one, at most MAX_RENEW_PERIODS)."""
    periods = 1
    while periods < MAX_RENEW_PERIODS and local_date(_renewed_until(service, periods)) <= day:
        periods += 1
    return periods


def _renewed_until(service: Service, periods: int):
    return period_end_after(anchor=service.period_anchor, expires_at=service.expires_at, months=service.period * periods)


def _notice_key(kind: str, service_id: int, day: date) -> str:
    return f"{kind}:{service_id}:{day.isoformat()}"


def service_plan(
    service: Service, *, day: date, rules: CycleRules, balance: Decimal, renewed: bool, pending: str | None, notices: set[str]
) -> list[Step]:
    """What the run does to `service` on `day`, in order. Pure: reads nothing but its arguments.

    `renewed`: this run renewed it already; `pending`: the panel action on its way, if any; `notices`:
    the keys of the notices already made for it.
    """
    for_nonpayment = service.status == _S.SUSPENDED and service.suspend_reason == SuspendReason.NONPAYMENT
    if service.expires_at is None or not (service.status == _S.ACTIVE or for_nonpayment):
        return []
    steps, expires_at = [], service.expires_at
    renewable = service.auto_renew and not renewed and pending != PanelAction.CLOSE
    if renewable and day >= rules.renew_on(local_date(expires_at)):
        # As many periods as pay for today (one, unless it is behind): never charged, then suspended or deleted.
        periods = periods_past(service, day)
        if (cost := service.price * periods) == 0 or balance >= cost:
            steps.append(Step(_A.RENEW, periods=periods))
            expires_at, balance = _renewed_until(service, periods), balance - cost
    expiry = local_date(expires_at)
    if for_nonpayment:
        if expiry > day:
            if pending != PanelAction.RESUME:
                steps.append(Step(_A.RESUME))
        elif service.suspended_at and day >= rules.delete_on(local_date(service.suspended_at)) and pending != PanelAction.CLOSE:
            steps.append(Step(_A.DELETE))
        return steps
    if (expiry - day).days in rules.notice_days:
        kind = (NotificationKind.LOW_BALANCE if balance < service.price else "") if service.auto_renew else NotificationKind.EXPIRES
        if kind and _notice_key(kind, service.pk, day) not in notices:
            steps.append(Step(_A.NOTICE, kind))
    if day >= rules.suspend_on(expiry) and pending != PanelAction.SUSPEND:
        steps.append(Step(_A.SUSPEND))
    return steps


def due_q(day: date, rules: CycleRules) -> Q:
    """Services that may have something to do on `day` (a superset of what service_plan acts on), by indexed columns."""
    after = lambda days: day_start(day + timedelta(days=days))  # noqa: E731
    for_nonpayment = Q(status=_S.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT)
    renew = Q(auto_renew=True, expires_at__lt=after(rules.renew_days_before + 1))
    notice = Q()
    for days in rules.notice_days:
        notice |= Q(expires_at__gte=after(days), expires_at__lt=after(days + 1))
    suspend = Q(expires_at__lt=after(1 - rules.grace_days))
    resume_or_delete = Q(expires_at__gte=after(1)) | Q(suspended_at__lt=after(1 - rules.delete_after_days))
    return Q(expires_at__isnull=False) & (
        (Q(status=_S.ACTIVE) & (renew | notice | suspend)) | (for_nonpayment & (renew | resume_or_delete))
    )


@dataclass
class ChunkReads:
    """What planning needs beyond the services themselves, read for a chunk at once."""

    balances: dict[int, Decimal]
    renewed: set[int]
    pending: dict[int, str]
    notices: set[str]

    @classmethod
    def read(cls, run: BillingRun, services: list[Service], day: date) -> "ChunkReads":
        ids, clients = [s.pk for s in services], {s.client_id for s in services}
        money = DecimalField(max_digits=14, decimal_places=2)
        sums = (
            LedgerEntry.objects.filter(client_id__in=clients)
            .values("client_id")
            .annotate(total=Coalesce(Sum("amount"), Value(Decimal(0)), output_field=money))
        )
        balances = {row["client_id"]: row["total"].quantize(Decimal("0.01")) for row in sums}
        renewed = set(
            BillingRunItem.objects.filter(run=run, service_id__in=ids, action=_A.RENEW, outcome=BillingOutcome.DONE).values_list(
                "service_id", flat=True
            )
        )
        pending = dict(
            Operation.objects.filter(service_id__in=ids, status__in=PENDING_OPERATION_STATUSES).values_list("service_id", "action")
        )
        notices = set(Notification.objects.filter(service_id__in=ids, day=day).values_list("key", flat=True))
        return cls(balances, renewed, pending, notices)

    def plan(self, service: Service, day: date, rules: CycleRules) -> list[Step]:
        return service_plan(
            service,
            day=day,
            rules=rules,
            balance=self.balances.get(service.client_id, Decimal("0.00")),
            renewed=service.pk in self.renewed,
            pending=self.pending.get(service.pk),
            notices=self.notices,
        )


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease_end():
    return timezone.now() + timedelta(seconds=settings.BILLING_RUN_LEASE_SECONDS)


def billing_run_start(*, day: date, dry_run: bool = False) -> BillingRun:
    """The run for `day`: a new dry run, or the date's one real run taken with its lease; RunInProgress while another holds it."""
    if day > today() and not dry_run:
        # A run ahead of its date would charge, suspend and delete early; a dry run may look ahead.
        raise ValidationError(f"{day} is after today ({today()}): only a dry run may look ahead")
    now, worker = timezone.now(), _worker()
    fields = {"status": BillingRunStatus.RUNNING, "worker": worker, "started_at": now, "lease_until": _lease_end(), "finished_at": None}
    if dry_run:
        return BillingRun.objects.create(day=day, dry_run=True, **fields)
    try:
        with transaction.atomic():
            return BillingRun.objects.create(day=day, **fields)
    except IntegrityError:
        pass  # the date was run before, or is running now
    taken = BillingRun.objects.filter(day=day, dry_run=False).filter(~Q(status=BillingRunStatus.RUNNING) | Q(lease_until__lt=now))
    if not taken.update(**fields):
        raise RunInProgress(BillingRun.objects.get(day=day, dry_run=False))
    return BillingRun.objects.get(day=day, dry_run=False)


def billing_run_joinable(*, day: date) -> BillingRun:
    """The real run for `day` that is running now, for another process to share its work; ValidationError when there is none."""
    run = BillingRun.objects.filter(day=day, dry_run=False, status=BillingRunStatus.RUNNING, lease_until__gte=timezone.now()).first()
    if run is None:
        raise ValidationError(f"no billing run for {day} is in progress: start one without --join")
    return run


class _Lease:
    """Renews the run's lease every third of its length; RunLost when another process took the date over."""

    def __init__(self, run: BillingRun):
        self.run, self.renewed_at = run, time.monotonic()

    def keep(self) -> None:
        if self.run.dry_run or time.monotonic() - self.renewed_at < settings.BILLING_RUN_LEASE_SECONDS / 3:
            return
        if not BillingRun.objects.filter(pk=self.run.pk, worker=self.run.worker, status=BillingRunStatus.RUNNING).update(
            lease_until=_lease_end()
        ):
            raise RunLost(f"the billing run for {self.run.day} was taken over by another process")
        self.renewed_at = time.monotonic()


def billing_run_process(
    run: BillingRun, *, rules: CycleRules | None = None, joined: bool = False, progress: Callable[[int, int], None] | None = None
) -> int:
    """Handle every service due on the run's date; `joined`: share a run another process started (it finishes the run).

    Returns how many services failed without a record of it (see _service_handle), for the failed count.
    """
    rules = rules or CycleRules.from_settings()
    ids = list(Service.objects.filter(due_q(run.day, rules)).order_by("expires_at", "pk").values_list("pk", flat=True))
    lease, held_by_others, done, unrecorded = _Lease(run), [], 0, 0
    for chunk in _chunks(ids, CHUNK):
        services = list(Service.objects.filter(pk__in=chunk).select_related("client").order_by("expires_at", "pk"))
        reads = ChunkReads.read(run, services, run.day)
        for service in services:
            # Planned from the chunk's reads first: a service with nothing to do costs no query of its own.
            if steps := reads.plan(service, run.day, rules):
                if run.dry_run:
                    _record_plan(run, service, steps)
                elif (outcome := _service_handle(run, service.pk, rules, skip_locked=True, first=steps[0].action)) == HELD:
                    held_by_others.append((service.pk, steps[0].action))
                else:
                    unrecorded += outcome == UNRECORDED
            lease.keep()
            done += 1
            if progress:
                progress(done, len(ids))
    if not joined:
        # What other processes held: wait for each row; they committed their work, so this usually finds nothing left.
        for service_id, first in held_by_others:
            unrecorded += _service_handle(run, service_id, rules, skip_locked=False, first=first) == UNRECORDED
            lease.keep()
    return unrecorded


def _chunks(ids: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _record_plan(run: BillingRun, service: Service, steps: list[Step]) -> None:
    BillingRunItem.objects.bulk_create(
        BillingRunItem(run=run, service=service, action=step.action, outcome=BillingOutcome.WOULD, message=_would(step, service))
        for step in steps
    )


def _would(step: Step, service: Service) -> StoredText:
    if step.action == _A.RENEW:
        amount = Money(service.price * step.periods, service.client.currency)
        return StoredText(gettext_noop("Would charge %(amount)s."), {"amount": amount})
    if step.action == _A.NOTICE:
        return StoredText(gettext_noop("Would send: %(kind)s."), {"kind": _label(step.notice)})
    return StoredText.of("")


# What _service_handle did with a service.
HANDLED, HELD, UNRECORDED = "handled", "held by another process", "failed, and the failure could not be recorded"


def _service_handle(run: BillingRun, service_id: int, rules: CycleRules, *, skip_locked: bool, first: str) -> str:
    """Plan and do one service's steps in one transaction under its row lock.

    A step refused by the rules (an operation already on its way, a balance spent meanwhile) is recorded as
    failed with the reason, and the next run tries again; an unexpected error is recorded the same way
    and the run goes on with the next service (recorded under `first`, the step planned first, unless a later one was under way).
    Recording a failure needs the service row too (its foreign key): when whoever made the lock wait time out
    still holds it, the failure is only logged and counted (UNRECORDED).
    """
    doing = first
    try:
        with transaction.atomic():
            service = Service.objects.select_for_update(skip_locked=skip_locked).select_related("client").filter(pk=service_id).first()
            if service is None:
                return HELD
            reads = ChunkReads(
                balances={service.client_id: client_balance(client=service.client)},
                renewed={service.pk} if run.items.filter(service=service, action=_A.RENEW, outcome=BillingOutcome.DONE).exists() else set(),
                pending={service.pk: action} if (action := service_pending_action(service=service)) else {},
                notices=set(Notification.objects.filter(service=service, day=run.day).values_list("key", flat=True)),
            )
            steps = reads.plan(service, run.day, rules)
            for number, step in enumerate(steps, start=1):
                doing = step.action
                try:
                    with transaction.atomic():
                        message = _perform(step, service, run.day, rules)
                except NothingToDo:
                    continue
                except ValidationError as error:
                    _record(run, service, step.action, BillingOutcome.FAILED, _refused(error))
                    continue
                if message is not None:
                    _record_done(run, service, step.action, message)
                if number < len(steps):
                    service.refresh_from_db()  # the next step sees what this one changed
    except Exception as error:  # one service's surprise must not stop the others' billing
        logger.exception("billing run %s: service %s failed", run.day, service_id)
        try:
            with transaction.atomic():
                _record(run, Service(pk=service_id), doing, BillingOutcome.FAILED, StoredText.of(f"{type(error).__name__}: {error}"))
        except DatabaseError:
            logger.exception("billing run %s: the failure of service %s could not be recorded", run.day, service_id)
            return UNRECORDED
    return HANDLED


def _refused(error: ValidationError) -> StoredText:
    return StoredText(gettext_noop("Refused: %(reason)s"), {"reason": " ".join(error.messages)})


def _record_done(run: BillingRun, service: Service, action: str, message: StoredText) -> None:
    """Write what the run did to a service, over a failure of the same step an earlier attempt recorded (one statement)."""
    BillingRunItem.objects.bulk_create(
        [BillingRunItem(run=run, service=service, action=action, outcome=BillingOutcome.DONE, message=message)],
        update_conflicts=True,
        unique_fields=["run", "service", "action"],
        update_fields=["outcome", "message", "created_at"],
    )


def _record(run: BillingRun, service: Service, action: str, outcome: str, message: StoredText) -> None:
    """Write what the run did to a service; what it did is never overwritten by a later failure."""
    item, created = BillingRunItem.objects.get_or_create(
        run=run, service_id=service.pk, action=action, defaults={"outcome": outcome, "message": message}
    )
    if not created and item.outcome != BillingOutcome.DONE:
        item.outcome, item.message = outcome, message
        item.save(update_fields=["outcome", "message", "created_at"])


def _perform(step: Step, service: Service, day: date, rules: CycleRules) -> StoredText | None:
    """Do one step; the message for the run's record, or None when nothing was done."""
    reason_nonpayment = StoredText(gettext_noop("not paid"))
    match step.action:
        case _A.RENEW:
            renewed = service_renew(service=service, periods=step.periods, expected_expiry=service.expires_at)
            return StoredText(
                gettext_noop("Renewed until %(until)s: %(amount)s charged."),
                {"until": Day(local_date(renewed.expires_at)), "amount": Money(renewed.price * step.periods, service.client.currency)},
            )
        case _A.NOTICE:
            expiry = local_date(service.expires_at)
            params = {"expires": expiry.isoformat(), "amount": str(service.price)}
            if step.notice == NotificationKind.LOW_BALANCE:
                balance = client_balance(client=service.client)
                params |= {"balance": str(balance), "missing": str(max(Decimal(0), service.price - balance))}
            made = notify(service=service, kind=step.notice, key=_notice_key(step.notice, service.pk, day), day=day, params=params)
            return StoredText(gettext_noop("Sent: %(kind)s."), {"kind": _label(step.notice)}) if made else None
        case _A.SUSPEND:
            service_action_request(
                service=service, action=PanelAction.SUSPEND, reason=reason_nonpayment, suspend_reason=SuspendReason.NONPAYMENT
            )
            since = Day(local_date(service.expires_at))
            return StoredText(gettext_noop("Suspension requested: not paid since %(expiry)s."), {"expiry": since})
        case _A.RESUME:
            # Planned with no resume on its way: one there now was queued by this transaction's renewal (service_renew).
            if service_pending_action(service=service) != PanelAction.RESUME:
                service_action_request(service=service, action=PanelAction.RESUME, reason=StoredText(gettext_noop("paid")))
            return StoredText(gettext_noop("Resume requested: paid until %(until)s."), {"until": Day(local_date(service.expires_at))})
        case _A.DELETE:
            service_action_request(service=service, action=PanelAction.CLOSE, reason=reason_nonpayment)
            return StoredText(
                gettext_noop("Deletion requested: suspended for non-payment since %(since)s."),
                {"since": Day(local_date(service.suspended_at))},
            )
    raise ValueError(step.action)


def _label(kind: str) -> StoredText:
    """A notification kind's label, stored as its msgid and translated when read."""
    with translation.override(None):
        return StoredText(str(NotificationKind(kind).label))


COUNTED = {
    _A.RENEW: "renewed",
    _A.NOTICE: "notified",
    _A.SUSPEND: "suspended",
    _A.RESUME: "resumed",
    _A.DELETE: "deleted",
}


def billing_run_finish(run: BillingRun, *, unrecorded: int = 0) -> BillingRun:
    """Count what the run did from its rows (the same after a repeat), plus failures it could not record, and close it."""
    outcome = BillingOutcome.WOULD if run.dry_run else BillingOutcome.DONE
    counts = dict.fromkeys([*COUNTED.values(), "failed"], 0)
    counts["failed"] = unrecorded
    for row in run.items.values("action", "outcome").annotate(n=Count("pk")).order_by():
        if row["outcome"] == BillingOutcome.FAILED:
            counts["failed"] += row["n"]
        elif row["outcome"] == outcome:
            counts[COUNTED[row["action"]]] += row["n"]
    status = BillingRunStatus.FAILED if counts["failed"] else BillingRunStatus.DONE
    with transaction.atomic():
        BillingRun.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now(), **counts)
        run.refresh_from_db()
        event_record(EventType.BILLING_RUN_FINISHED, billing_run_payload(run))  # a dry run too, with dry_run in its data
    return run


def billing_run(*, day: date, dry_run: bool = False, progress: Callable[[int, int], None] | None = None) -> BillingRun:
    """The daily run for `day`, start to finish (manage.py billing_daily)."""
    run = billing_run_start(day=day, dry_run=dry_run)
    return billing_run_finish(run, unrecorded=billing_run_process(run, progress=progress))


def client_overdue_renew(*, client_id: int) -> list[Service]:
    """Money arrived: renew the client's overdue services that renew from the balance, oldest expiry first, as far as it goes.

    Each is renewed for as many periods as pay for today (continuing from the old anchor),
    and one suspended for non-payment is resumed (service_renew queues it). A service the balance does
    not cover is left for a later payment; a cheaper one after it may still be renewed.
    """
    now, renewed = timezone.now(), []
    overdue = Service.objects.filter(
        Q(status=_S.ACTIVE) | Q(status=_S.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT),
        client_id=client_id,
        auto_renew=True,
        expires_at__lte=now,
        period_anchor__isnull=False,
    ).order_by("expires_at", "pk")
    for service in overdue:
        try:
            renewed.append(service_renew(service=service, periods=periods_past(service, today()), expected_expiry=service.expires_at))
        except InsufficientFunds:
            continue
        except ValidationError as error:  # renewed meanwhile, or no longer renewable: the daily run looks again
            logger.info("service %s not renewed on payment: %s", service.pk, error.messages)
    return renewed


def money_arrived(client_id: int) -> None:
    """After a top-up commits: renew what is overdue at once, without waiting for the daily run."""
    transaction.on_commit(partial(client_overdue_renew, client_id=client_id), robust=True)
