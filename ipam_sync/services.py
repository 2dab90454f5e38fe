"""Dedicated IPs of services: taken from IPmanager on open, given back on delete, and the check.

Every address billing takes carries a note naming this billing and the service, so a retry after a
lost reply adopts the address instead of taking a second one, and sync_ips can tell billing's
addresses from ones allocated by hand.
"""

import contextlib

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from billing.choices import ResourceKind
from billing.models import Service
from billing.stored_text import StoredText
from ipam_sync.ipmanager.client import DEFAULT_IP_TYPE, IPmanagerClient
from ipam_sync.models import IPAssignment, IPmanagerIntegration
from provisioning.coremanager.check import CheckResult
from provisioning.coremanager.client import LEVEL_ADMIN
from provisioning.coremanager.errors import AlreadyExists, AuthFailed, NoSuchFunction, NotFound, PermanentError, ProvisioningError


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
    )


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

    Addresses an earlier attempt took (found by their note) are adopted; when IPmanager cannot give
    them all, what this attempt took is given back, so nothing is left half done.
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
    for address in client.addresses():
        if address.note == note and address.ip not in held and len(held) < wanted:
            _record(service, integration, address.ip)
            held.append(address.ip)
    taken = []
    try:
        while len(held) < wanted:
            address = client.allocate(iptype=DEFAULT_IP_TYPE, domain=service.domain, note=note)
            taken.append(address)
            _record(service, integration, address)
            held.append(address)
    except PermanentError:
        if taken:
            client.release(*taken)
            IPAssignment.objects.filter(service=service, address__in=taken).update(released_at=timezone.now())
        raise
    return held


def service_ips_release(*, service: Service) -> None:
    """Give the service's addresses back to IPmanager; one already free counts as given back."""
    for assignment in IPAssignment.objects.filter(service=service, released_at__isnull=True).select_related("integration"):
        with contextlib.suppress(NotFound):  # already free
            ipmanager_client(assignment.integration).release(assignment.address)
        assignment.released_at = timezone.now()
        assignment.save(update_fields=["released_at"])


def integration_check_connection(*, integration: IPmanagerIntegration, save: bool = True) -> CheckResult:
    """Log in as the user (and the administrator, when given) and say what the user may take."""
    result = _check(integration)
    integration.check_ok, integration.check_message, integration.checked_at = result.ok, result.message, timezone.now()
    if save:
        integration.save(update_fields=["check_ok", "check_message", "checked_at"])
    return result


def _check(integration: IPmanagerIntegration) -> CheckResult:
    client = ipmanager_client(integration, timeout=settings.PANEL_CHECK_TIMEOUT)
    try:
        name, _level = client.whoami()
    except ProvisioningError as error:
        return CheckResult(ok=False, message=error.message, blocking=isinstance(error, PermanentError))
    try:
        pools, groups = client.pools(), client.iptypes()
    except PermanentError as error:
        if not isinstance(error, NoSuchFunction):
            return CheckResult(ok=False, message=error.message, blocking=True)
        # The panel has no address pools: a "dummy" integration through ISPmanager Business.
        message = gettext_noop(
            "Logged in as %(user)s. This panel hands out no addresses: a dummy integration, fine when dedicated IPs are not sold."
        )
        return CheckResult(ok=True, message=StoredText(message, {"user": name}))
    except ProvisioningError as error:
        return CheckResult(ok=False, message=error.message)
    usable = sum(pool.size for pool in pools if not pool.hidden)
    if not usable or not groups:
        message = StoredText(
            gettext_noop("User %(user)s has no IP access: a valid dummy integration, fine when dedicated IPs are not sold."), {"user": name}
        )
    else:
        ranges = ", ".join(pool.range for pool in pools if not pool.hidden)
        message = StoredText(
            gettext_noop("User %(user)s may take the addresses %(ranges)s (%(count)d in all) in the groups: %(groups)s."),
            {"user": name, "ranges": ranges, "count": usable, "groups": ", ".join(groups)},
        )
        if DEFAULT_IP_TYPE not in groups:
            more = gettext_noop("Shared hosting uses the '%(group)s' group, which this user may not take.")
            message = _and(message, StoredText(more, {"group": DEFAULT_IP_TYPE}))
    if integration.admin_username:
        try:
            admin_name, admin_level = ipmanager_client(integration, administrator=True, timeout=settings.PANEL_CHECK_TIMEOUT).whoami()
        except ProvisioningError as error:
            login = StoredText(gettext_noop("Administrator login: %(error)s"), {"error": error.message})
            return CheckResult(ok=False, message=_and(message, login), blocking=isinstance(error, AuthFailed))
        if admin_level < LEVEL_ADMIN:
            not_admin = StoredText(gettext_noop("%(user)s is not an IPmanager administrator."), {"user": admin_name})
            return CheckResult(ok=False, message=_and(message, not_admin), blocking=True)
        message = _and(message, StoredText(gettext_noop("Synchronization runs as administrator %(user)s."), {"user": admin_name}))
    return CheckResult(ok=True, message=message)


def _and(first: StoredText, then: StoredText) -> StoredText:
    """Two sentences of a check's report, each translated on its own."""
    return StoredText(gettext_noop("%(first)s %(then)s"), {"first": first, "then": then})
