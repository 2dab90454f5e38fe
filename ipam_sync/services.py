"""Dedicated IPs of services: taken from IPmanager on open or an upgrade, given back on delete or a downgrade, and the check.

Every address billing takes carries a note naming this billing and the service, so a retry after a
lost reply adopts the address instead of taking a second one, and sync_ips can tell billing's
addresses from ones allocated by hand.
"""

import contextlib
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from billing.choices import ResourceKind
from billing.models import Service
from billing.stored_text import StoredText
from ipam_sync.ipmanager.client import DEFAULT_IP_TYPE, AllocationUnconfirmed, IPmanagerClient, canonical
from ipam_sync.models import IPAssignment, IPmanagerIntegration
from provisioning.coremanager.check import CheckResult, sentences
from provisioning.coremanager.client import LEVEL_ADMIN
from provisioning.coremanager.errors import (
    AccessDenied,
    AlreadyExists,
    AuthFailed,
    NoSuchFunction,
    NotFound,
    PermanentError,
    ProvisioningError,
)


def note_for(service_id: int) -> str:
    """e.g. "billing service #117": who took the address and for what."""
    return f"{settings.IPAM_NOTE_PREFIX} service #{service_id}"


def is_ours(note: str) -> bool:
    return note.startswith(f"{settings.IPAM_NOTE_PREFIX} service #")


def ipmanager_client(integration: IPmanagerIntegration, *, administrator: bool = False, timeout=None) -> IPmanagerClient:
    username, password = (
        (integration.admin_username, integration.admin_password) if administrator else (integration.username, integration.password)
    )
    return IPmanagerClient(
        integration.url,
        username,
        password or "",
        verify=integration.verify_tls,
        ca_certificate=integration.ca_certificate,
        timeout=timeout or settings.PANEL_TIMEOUT,
        function_overrides=integration.function_names,
    )


def ptr_name(domain: str) -> str:
    """The PTR name IPmanager is given: the FQDN with its trailing dot (IPAM_PTR_TRAILING_DOT)."""
    if settings.IPAM_PTR_TRAILING_DOT and domain and not domain.endswith("."):
        return f"{domain}."
    return domain


def wanted_ips(service: Service) -> int:
    return next((r.quantity for r in service.resources.all() if r.kind == ResourceKind.DEDICATED_IPV4), 0)


def _record(service: Service, integration: IPmanagerIntegration, address: str) -> None:
    try:
        with transaction.atomic():
            IPAssignment.objects.get_or_create(
                integration=integration, service=service, address=address, released_at__isnull=True, defaults={"ip_type": DEFAULT_IP_TYPE}
            )
    except IntegrityError:
        holder = IPAssignment.objects.filter(address=address, released_at__isnull=True).values_list("service_id", flat=True).first()
        message = gettext_noop(
            "IPmanager handed out %(address)s, which billing still has on service #%(service)s: run sync_ips, then retry"
        )
        raise AlreadyExists(StoredText(message, {"address": address, "service": holder})) from None


def service_ips_allocate(*, service: Service) -> list[str]:
    """Make the service hold its ordered dedicated IPs; returns its addresses.

    Addresses an earlier attempt took (found by their note) are adopted, and so is one this attempt
    took when IPmanager's reply did not name it; when IPmanager cannot give them all, what this
    attempt took is given back, so nothing is left half done.
    """
    wanted = wanted_ips(service)
    held = list(IPAssignment.objects.filter(service=service, released_at__isnull=True).values_list("address", flat=True))
    if len(held) >= wanted:
        return held
    integration = service.tariff.processing_module.ipmanager
    if integration is None:
        message = gettext_noop("the processing module %(module)s has no IPmanager integration")
        raise PermanentError(StoredText(message, {"module": str(service.tariff.processing_module)}))
    client = ipmanager_client(integration)
    note = note_for(service.pk)
    _adopt(client, service, integration, note, held, wanted)
    taken = []
    try:
        while len(held) < wanted:
            try:
                address = client.allocate(iptype=DEFAULT_IP_TYPE, domain=ptr_name(service.domain), note=note)
            except AllocationUnconfirmed as error:
                # Looked for at once: a retry would allocate again if the note cannot find what this call took.
                adopted = _adopt(client, service, integration, note, held, wanted)
                if not adopted:
                    message = gettext_noop("%(error)s, and no address in IPmanager carries the note %(note)s")
                    raise PermanentError(StoredText(message, {"error": error.message, "note": note})) from None
                taken += adopted
                continue
            taken.append(address)
            _record(service, integration, address)
            held.append(address)
    except PermanentError:
        if taken:
            client.release(*taken)
            IPAssignment.objects.filter(service=service, address__in=taken).update(released_at=timezone.now())
        raise
    return held


def _adopt(client: IPmanagerClient, service: Service, integration: IPmanagerIntegration, note: str, held: list, wanted: int) -> list[str]:
    """Record the addresses IPmanager holds with the service's note that billing does not know yet (up to `wanted`)."""
    adopted = []
    for address in client.addresses():
        ip = canonical(address.ip)
        if address.note == note and ip and ip not in held and len(held) < wanted:
            _record(service, integration, ip)
            held.append(ip)
            adopted.append(ip)
    return adopted


def service_ips_release(*, service: Service) -> None:
    """Give the service's addresses back to IPmanager; one already free counts as given back."""
    for assignment in IPAssignment.objects.filter(service=service, released_at__isnull=True).select_related("integration"):
        with contextlib.suppress(NotFound):  # already free
            ipmanager_client(assignment.integration).release(assignment.address)
        assignment.released_at = timezone.now()
        assignment.save(update_fields=["released_at"])


def service_ips_trim(*, service: Service, backend) -> list[str]:
    """Give back the addresses the service holds beyond what it now wants, the most recently allocated first; returns them.

    Off the panel first (`backend.unassign_ips`), then back to IPmanager: released while still
    configured, an address could go to another customer and clash. Computed from what billing still
    holds, so a retry after a lost reply gives back nothing twice.
    """
    live = IPAssignment.objects.filter(service=service, released_at__isnull=True).select_related("integration")
    held = list(live.order_by("-allocated_at", "-pk"))
    extra = held[: max(0, len(held) - wanted_ips(service))]
    if not extra:
        return []
    addresses = [assignment.address for assignment in extra]
    backend.unassign_ips(service, addresses)
    note = note_for(service.pk)
    for assignment in extra:
        # Read first: an address an earlier attempt gave back (its reply lost) may already be another service's.
        client = ipmanager_client(assignment.integration)
        with contextlib.suppress(AccessDenied):  # not ours to read any more: given back
            if (found := client.address(assignment.address)) is not None and found.note == note:
                with contextlib.suppress(NotFound):  # freed meanwhile
                    client.release(assignment.address)
        assignment.released_at = timezone.now()
        assignment.save(update_fields=["released_at"])
    return addresses


def integration_check_connection(*, integration: IPmanagerIntegration, save: bool = True) -> CheckResult:
    """Log in as the user (and the administrator, when given) and say what the user may take."""
    result = _check(integration)
    integration.check_ok, integration.check_message, integration.checked_at = result.ok, result.message, timezone.now()
    if save:
        integration.save(update_fields=["check_ok", "check_message", "checked_at"])
    return result


def _check(integration: IPmanagerIntegration) -> CheckResult:
    report = _Report()
    reached = _check_user(ipmanager_client(integration, timeout=settings.PANEL_CHECK_TIMEOUT), report)
    if integration.admin_username and reached:
        _check_administrator(ipmanager_client(integration, administrator=True, timeout=settings.PANEL_CHECK_TIMEOUT), report)
    return report.result()


@dataclass
class _Report:
    """The sentences of a connection check, and what they add up to."""

    sentences: list[StoredText] = field(default_factory=list)
    ok: bool = True
    warning: bool = False
    blocking: bool = False

    def say(self, message: str, params: dict | None = None) -> None:
        self.sentences.append(StoredText(message, params or {}))

    def unverified(self, message: str, params: dict) -> None:
        self.warning = True
        self.say(message, params)

    def fail(self, message: StoredText, *, blocking: bool) -> None:
        self.ok, self.blocking = False, self.blocking or blocking
        self.sentences.append(message)

    def result(self) -> CheckResult:
        return CheckResult(ok=self.ok, message=sentences(*self.sentences), warning=self.warning, blocking=self.blocking)


def _check_user(client: IPmanagerClient, report: _Report) -> bool:
    """Log in as the integration's user and say which groups it may take; False when the panel was not reached at all."""
    try:
        name, _level = client.caller()
    except NoSuchFunction:
        name = client.username
        report.unverified(gettext_noop("Could not verify the login: the panel has no function %(func)s."), {"func": client.whoami_function})
    except ProvisioningError as error:
        report.fail(error.message, blocking=isinstance(error, PermanentError))
        return isinstance(error, AuthFailed)  # a wrong user password says nothing about the administrator's
    try:
        groups = client.iptypes()
    except NoSuchFunction:
        report.say(gettext_noop("Logged in as %(user)s."), {"user": name})
        message = gettext_noop(
            "Could not verify the IP groups: the panel has no function %(func)s (a panel that hands out no addresses "
            "is a valid dummy integration, fine when dedicated IPs are not sold)."
        )
        report.unverified(message, {"func": client.functions["groups"]})
    except ProvisioningError as error:
        report.fail(error.message, blocking=isinstance(error, PermanentError))
        return isinstance(error, AuthFailed)
    else:
        if not groups:
            report.say(
                gettext_noop("User %(user)s has no IP groups: a valid dummy integration, fine when dedicated IPs are not sold."),
                {"user": name},
            )
        else:
            report.say(
                gettext_noop("User %(user)s may take addresses in the groups: %(groups)s."), {"user": name, "groups": ", ".join(groups)}
            )
            if DEFAULT_IP_TYPE not in groups:
                report.say(
                    gettext_noop("Shared hosting uses the '%(group)s' group, which this user may not take."), {"group": DEFAULT_IP_TYPE}
                )
    return True


def _check_administrator(client: IPmanagerClient, report: _Report) -> None:
    """The administrator's password and level: wrong or below administrator refuses the save."""
    try:
        name, level = client.caller()
    except NoSuchFunction:
        message = gettext_noop("Could not verify the administrator login: the panel has no function %(func)s.")
        report.unverified(message, {"func": client.whoami_function})
        return
    except ProvisioningError as error:
        login = StoredText(gettext_noop("Administrator login: %(error)s"), {"error": error.message})
        report.fail(login, blocking=isinstance(error, PermanentError))
        return
    if level is None:
        message = gettext_noop(
            "Synchronization runs as %(user)s; could not verify that it is an administrator: the panel tells no level (whoami, auth)."
        )
        report.unverified(message, {"user": name})
    elif level < LEVEL_ADMIN:
        message = gettext_noop("%(user)s is not an IPmanager administrator (level %(level)d, %(needed)d needed).")
        report.fail(StoredText(message, {"user": name, "level": level, "needed": LEVEL_ADMIN}), blocking=True)
    else:
        report.say(gettext_noop("Synchronization runs as administrator %(user)s."), {"user": name})
