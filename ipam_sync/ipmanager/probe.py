"""What `panel_probe` looks at in an IPmanager 5 (docs/ipmanager-api.md), read-only.

The function names billing calls (the integration's, overrides included), the caller's level, the
groups and a sample of the user's addresses, and, with administrator credentials, the administrator's
level and view of the list. A missing function is reported with the override to set in the
integration's Advanced section, and this panel's functions that may be the one meant.
"""

from django.conf import settings
from django.utils.translation import gettext_noop

from billing.stored_text import StoredText
from ipam_sync.ipmanager.client import DEFAULT_IP_TYPE
from ipam_sync.ipmanager.functions import function_names
from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_USER, fields
from provisioning.coremanager.errors import AccessDenied, NoSuchFunction, NotFound, ProvisioningError
from provisioning.coremanager.probe import (
    SAMPLE_SIZE,
    Presence,
    ReadOnlyPanel,
    Report,
    Status,
    caller_findings,
    connection_failed,
    function_finding,
    list_findings,
    read_function_list,
    read_list,
    report_store,
)

# Purpose (a key of function_names) -> what it is for, as the Advanced section labels its override.
FUNCTIONS = {
    "whoami": gettext_noop("Who am I"),
    "list": gettext_noop("List addresses"),
    "read": gettext_noop("Read an address"),
    "allocate": gettext_noop("Allocate an address"),
    "release": gettext_noop("Release an address"),
    "groups": gettext_noop("List IP groups"),
}
# Without these billing still works: only the connection check says less.
OPTIONAL = {"groups": gettext_noop("The connection check cannot say which groups the user may take.")}
ADDRESS_FIELDS_NEEDED = ("ip", "note")  # billing finds its own addresses by their note
ADDRESS_FIELDS_DOCUMENTED = ("ip", "iptype", "domain", "note")
MAX_CANDIDATES = 10


def integration_probe(*, integration, timeout: tuple[float, float] | None = None) -> Report:
    """Probe the integration's IPmanager and keep the report on the integration."""
    report = probe(integration, timeout=timeout or settings.PANEL_TIMEOUT)
    report_store(connection=integration, report=report)
    return report


def probe(integration, *, timeout: tuple[float, float]) -> Report:
    names = function_names(integration.function_names)
    report = Report("ipmanager", integration.name, integration.url, integration.username)
    panel = ReadOnlyPanel(
        integration, username=integration.username, password=integration.password, timeout=timeout, never={names["release"]}
    )
    try:
        caller = panel.levels(names["whoami"])
    except ProvisioningError as error:
        connection_failed(report, error)
        return report
    caller_findings(report, caller, check="caller", need=LEVEL_USER)
    try:
        _probe(report, panel, integration, names)
    except ProvisioningError as error:  # the panel stopped answering halfway
        connection_failed(report, error)
    if integration.admin_username:
        _probe_administrator(report, integration, names, timeout=timeout)
    return report


def _probe(report: Report, panel: ReadOnlyPanel, integration, names: dict) -> None:
    listed = read_function_list(report, panel, names["actionlist"])
    addresses = _read(read_list, panel, names["list"])
    sample = addresses.rows[:SAMPLE_SIZE] if addresses else []
    first = sample[0].get("ip") if sample else None
    # Without an address, the empty form (no elid, no sok) still shows that the function exists.
    form = _read(panel.call, names["read"], elid=first) if first else _read(panel.call, names["read"])
    groups = _read(read_list, panel, names["groups"])

    for purpose, label in FUNCTIONS.items():
        _function_findings(report, panel, purpose, label, names, listed, integration)
    if addresses is not None:
        list_findings(
            report, addresses, func=names["list"], user=panel.username, needed=ADDRESS_FIELDS_NEEDED, documented=ADDRESS_FIELDS_DOCUMENTED
        )
        _sample_findings(report, panel.username, sample)
    if first and form is not None:
        seen = sorted(fields(form))
        message = gettext_noop("%(func)s of %(ip)s: fields %(fields)s.")
        report.add(
            f"form:{names['read']}", Status.OK, message, {"func": names["read"], "ip": first, "fields": ", ".join(seen)}, fields=seen
        )
    if groups is not None:
        list_findings(report, groups, func=names["groups"], user=panel.username, needed=("name",), documented=("name",))
        _group_findings(report, panel.username, [row["name"] for row in groups.rows if row.get("name")])


def _read(read, *args, **params):
    """What a read gives, or None when the panel lacks the function, refuses it, or has no such element (seen by the panel)."""
    try:
        return read(*args, **params)
    except (NoSuchFunction, AccessDenied, NotFound):
        return None


def _function_findings(report: Report, panel: ReadOnlyPanel, purpose: str, label: str, names: dict, listed, integration) -> None:
    func = names[purpose]
    presence = panel.presence(func, listed)
    override = {"label": StoredText(label), "purpose": purpose}
    if presence == Presence.PRESENT or presence == Presence.DENIED:
        advice = None
    elif presence is None:
        advice = StoredText(
            gettext_noop("If it fails on this panel, set \"%(label)s\" in the integration's Advanced section to the panel's name for it."),
            override,
        )
    else:
        if candidates := _candidates(func, listed, names):
            message = gettext_noop(
                "Set \"%(label)s\" in the integration's Advanced section to this panel's name for it; candidates: %(names)s."
            )
            advice = StoredText(message, override | {"names": ", ".join(candidates)})
        else:
            advice = StoredText(
                gettext_noop("Set \"%(label)s\" in the integration's Advanced section to this panel's name for it."), override
            )
        if purpose in OPTIONAL:
            advice = StoredText(gettext_noop("%(first)s %(then)s"), {"first": StoredText(OPTIONAL[purpose]), "then": advice})
    function_finding(
        report,
        func=func,
        purpose=label,
        presence=presence,
        absent_status=Status.DIFFERENT if purpose in OPTIONAL else Status.MISSING,
        advice=advice,
        check=f"function:{purpose}",
        purpose_code=purpose,
        overridden=purpose in (integration.function_names or {}),
        candidates=_candidates(func, listed, names),
    )


def _candidates(func: str, listed: set[str] | None, names: dict) -> list[str]:
    """Functions of this panel that start like `func` (ip.delete: ip.*) and billing calls for nothing else."""
    if not listed:
        return []
    prefix = func.split(".", 1)[0] + "."
    used = set(names.values())
    return sorted(name for name in listed if name.startswith(prefix) and name not in used)[:MAX_CANDIDATES]


def _sample_findings(report: Report, user: str, sample: list[dict]) -> None:
    if not sample:
        report.add("addresses", Status.OK, gettext_noop("%(user)s holds no addresses yet."), {"user": user}, sample=[])
        return
    shown = [{key: row.get(key, "") for key in ADDRESS_FIELDS_DOCUMENTED} for row in sample]
    lines = "; ".join(f"{row['ip']} ({row['iptype'] or '—'}, {row['domain'] or '—'}, {row['note'] or '—'})" for row in shown)
    message = gettext_noop("A sample of the addresses of %(user)s (address, group, PTR, note): %(sample)s.")
    report.add("addresses", Status.OK, message, {"user": user, "sample": lines}, sample=shown)


def _group_findings(report: Report, user: str, groups: list[str]) -> None:
    found = {"user": user, "groups": ", ".join(groups) or "—", "group": DEFAULT_IP_TYPE}
    if DEFAULT_IP_TYPE in groups:
        report.add("groups", Status.OK, gettext_noop("%(user)s may use the groups: %(groups)s."), found, groups=groups)
        return
    report.add(
        "groups",
        Status.DIFFERENT,
        gettext_noop("%(user)s may not use the group %(group)s, which shared hosting's dedicated IPs come from (groups: %(groups)s)."),
        found,
        advice=StoredText(
            gettext_noop("Allow %(group)s for %(user)s in IPmanager, or keep this a dummy integration if dedicated IPs are not sold."),
            found,
        ),
        groups=groups,
    )


def _probe_administrator(report: Report, integration, names: dict, *, timeout) -> None:
    """The administrator login that sync_ips uses: its level, and the list as it sees it (with owners)."""
    panel = ReadOnlyPanel(
        integration,
        username=integration.admin_username,
        password=integration.admin_password or "",
        timeout=timeout,
        never={names["release"]},
    )
    try:
        caller = panel.levels(names["whoami"])
        caller_findings(report, caller, check="admin", need=LEVEL_ADMIN)
        addresses = _read(read_list, panel, names["list"])
    except ProvisioningError as error:
        message = gettext_noop("The administrator login could not be probed: %(error)s")
        connection_failed(report, error, check="admin:connection", message=message)
        return
    if addresses is not None:
        documented = (*ADDRESS_FIELDS_DOCUMENTED, "owner")
        list_findings(
            report,
            addresses,
            func=names["list"],
            user=panel.username,
            needed=ADDRESS_FIELDS_NEEDED,
            documented=documented,
            check="admin:list",
        )
