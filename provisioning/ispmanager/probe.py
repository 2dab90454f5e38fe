"""What `panel_probe` looks at in an ISPmanager 5 (docs/ispmanager-api.md), read-only.

The functions billing calls, the caller's level, the edition text, the user and template lists, the
`user.edit` form of an existing user and the templates of the module's tariffs.
"""

from django.conf import settings
from django.utils.translation import gettext_noop

from billing.stored_text import StoredText
from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_RESELLER, fields, text
from provisioning.coremanager.errors import AccessDenied, NoSuchFunction, NotFound, ProvisioningError
from provisioning.coremanager.probe import (
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
from provisioning.ispmanager.client import LIMIT_PREFIX, edition_of

# The calls billing makes and what each is for.
FUNCTIONS = (
    ("license.info", gettext_noop("the edition")),
    ("whoami", gettext_noop("who the login is")),
    ("user", gettext_noop("the list of accounts")),
    ("user.edit", gettext_noop("read and change an account")),
    ("user.add.finish", gettext_noop("create an account")),
    ("user.suspend", gettext_noop("suspend an account")),
    ("user.resume", gettext_noop("resume an account")),
    ("user.delete", gettext_noop("delete an account")),
    ("preset", gettext_noop("the list of templates")),
    ("preset.edit", gettext_noop("read and create a template")),
    ("ipaddr", gettext_noop("the addresses a closed account still holds, on Business")),
    ("ipaddr.edit", gettext_noop("assign a dedicated IP, on Business")),
    ("ipaddr.delete", gettext_noop("remove a dedicated IP on close, on Business")),
    ("session.newkey", gettext_noop('the "Open control panel" button')),
)
BUSINESS_ONLY = frozenset({"ipaddr", "ipaddr.edit", "ipaddr.delete"})
OPTIONAL = {"session.newkey": gettext_noop('Without it the "Open control panel" button fails; everything else works.')}

USER_FIELDS_NEEDED = ("name", "active")
USER_FIELDS_DOCUMENTED = ("name", "active", "level", "quota_total", "quota_used")


def module_probe(*, module, timeout: tuple[float, float] | None = None) -> Report:
    """Probe the module's ISPmanager and keep the report on the module."""
    report = probe(module, timeout=timeout or settings.PANEL_TIMEOUT)
    report_store(connection=module, report=report)
    return report


def probe(module, *, timeout: tuple[float, float]) -> Report:
    report = Report("ispmanager", module.name, module.url, module.username)
    panel = ReadOnlyPanel(module, username=module.username, password=module.password, timeout=timeout)
    try:
        caller = panel.levels()
    except ProvisioningError as error:
        connection_failed(report, error)
        return report
    consequence = gettext_noop(
        "a reseller manages its own accounts only: dedicated IPs, the Open control panel button, new templates "
        "and External FTP storage on Business need an administrator."
    )
    caller_findings(report, caller, check="caller", need=LEVEL_RESELLER, prefer=LEVEL_ADMIN, consequence=consequence)
    try:
        _probe(report, panel, module)
    except ProvisioningError as error:  # the panel stopped answering halfway
        connection_failed(report, error)
    return report


def _probe(report: Report, panel: ReadOnlyPanel, module) -> None:
    listed = read_function_list(report, panel)
    license_doc = _read(panel.call, "license.info")
    users = _read(read_list, panel, "user")
    presets = _read(read_list, panel, "preset")
    form_of = users.rows[0].get("name") if users and users.rows else None
    form = _read(panel.call, "user.edit", elid=form_of) if form_of else None
    if form_of is None:
        _read(panel.call, "user.edit")  # an empty form: enough to see that the function exists
    tariff_templates = _tariff_templates(module)
    templates = tariff_templates or _sample_template(presets)
    read_templates = {name: _read(panel.call, "preset.edit", elid=name) for name in templates}
    if not templates:
        _read(panel.call, "preset.edit")

    business = _edition_findings(report, license_doc, module)
    for func, purpose in FUNCTIONS:
        presence = panel.presence(func, listed)
        if func in BUSINESS_ONLY and not business and presence != Presence.PRESENT:
            message = gettext_noop("%(func)s (%(purpose)s): not used on Lite.")
            report.add(f"function:{func}", Status.OK, message, {"func": func, "purpose": StoredText(purpose)}, func=func)
            continue
        optional = OPTIONAL.get(func)
        status = Status.DIFFERENT if optional else Status.MISSING
        function_finding(report, func=func, purpose=purpose, presence=presence, absent_status=status, advice=optional)
    if users is not None:
        documented = USER_FIELDS_DOCUMENTED + (("owner",) if business else ())
        list_findings(report, users, func="user", user=module.username, needed=USER_FIELDS_NEEDED, documented=documented)
    if presets is not None:
        list_findings(report, presets, func="preset", user=module.username, needed=("name",), documented=("name",))
    _form_findings(report, form_of, form)
    _template_findings(report, read_templates, sample=not tariff_templates)


def _read(read, *args, **params):
    """What a read gives, or None when the panel lacks the function, refuses it, or has no such element (seen by the panel)."""
    try:
        return read(*args, **params)
    except (NoSuchFunction, AccessDenied, NotFound):
        return None


def _tariff_templates(module) -> list[str]:
    return sorted(set(module.tariffs.exclude(account_template="").values_list("account_template", flat=True)))


def _sample_template(presets) -> list[str]:
    """The panel's first template, read as a sample when no tariff names one."""
    return [presets.rows[0]["name"]] if presets and presets.rows and presets.rows[0].get("name") else []


def _edition_findings(report: Report, doc: dict | None, module) -> bool:
    """The edition text of license.info and what billing makes of it; True for Business."""
    if doc is None:
        report.add("edition", Status.UNKNOWN, gettext_noop("license.info could not be read: the edition is not known."))
        return module.edition == "business"
    panel_name, mgr = text(doc.get("panel_name")).strip(), text(doc.get("mgr")).strip()
    edition = edition_of(f"{panel_name} {mgr}")
    said = {"panel_name": panel_name or "—", "mgr": mgr or "—", "edition": edition.capitalize()}
    if not any(name in f"{panel_name} {mgr}".lower() for name in ("business", "lite")):
        message = gettext_noop(
            'license.info: panel_name "%(panel_name)s", mgr "%(mgr)s" name neither Business nor Lite: billing treats the panel as Lite.'
        )
        advice = gettext_noop("If this is ISPmanager Business, dedicated IPs will not be sold through it.")
        report.add("edition", Status.DIFFERENT, message, said, advice=advice, panel_name=panel_name, mgr=mgr, edition=edition)
    else:
        message = gettext_noop('license.info: panel_name "%(panel_name)s", mgr "%(mgr)s": billing treats the panel as %(edition)s.')
        report.add("edition", Status.OK, message, said, panel_name=panel_name, mgr=mgr, edition=edition)
    if module.edition and module.edition != edition:
        report.add(
            "edition:check",
            Status.DIFFERENT,
            gettext_noop("The last connection check recorded %(stored)s, the panel now says %(edition)s."),
            {"stored": module.edition.capitalize(), "edition": edition.capitalize()},
            advice=gettext_noop("Check the connection again (the action on the module list) to record the edition."),
        )
    return edition == "business"


def _form_findings(report: Report, login: str | None, form: dict | None) -> None:
    if form is None:
        report.add("form:user.edit", Status.UNKNOWN, gettext_noop("No account could be read, so the user.edit form was not seen."))
        return
    values = fields(form)
    seen = sorted(values)
    limits = [name for name in seen if name.startswith(LIMIT_PREFIX)]
    message = gettext_noop("user.edit of %(user)s: fields %(fields)s.")
    report.add("form:user.edit", Status.OK, message, {"user": login, "fields": ", ".join(seen)}, fields=seen, limits=limits)
    flagged = {
        "active": (
            gettext_noop("The user.edit form has no active: billing reads whether an account is suspended from the user list."),
            gettext_noop("Nothing to change while the user list has active."),
        ),
        "fullname": (
            gettext_noop(
                'The user.edit form has no fullname: billing cannot read its "Service #ID" mark back from it, so an account '
                "left by a lost reply is adopted only when it accepts that operation's password."
            ),
            gettext_noop("Nothing to change; after a failed create, look for a stray account in the panel."),
        ),
    }
    for name, (missing, advice) in flagged.items():
        if name in values:
            report.add(f"form:user.edit:{name}", Status.OK, gettext_noop("The user.edit form has %(field)s."), {"field": name})
        else:
            report.add(f"form:user.edit:{name}", Status.DIFFERENT, missing, advice=advice)


def _template_findings(report: Report, templates: dict[str, dict | None], *, sample: bool) -> None:
    if not templates:
        report.add("template", Status.UNKNOWN, gettext_noop("No tariff uses this module and the panel lists no template."))
        return
    for name, form in templates.items():
        check = f"template:{name}"
        if form is None:
            report.add(
                check,
                Status.DIFFERENT,
                gettext_noop('There is no template "%(name)s": billing creates it without limits (unlimited) at the first order.'),
                {"name": name},
                advice=StoredText(gettext_noop('Create "%(name)s" in ISPmanager with the limits its tariffs start from.'), {"name": name}),
            )
            continue
        values = fields(form)
        limits = {key: value for key, value in values.items() if key.startswith(LIMIT_PREFIX)}
        shown = ", ".join(f"{key}={value or '∞'}" for key, value in sorted(limits.items())) or "—"
        message = (
            gettext_noop('Template "%(name)s" (no tariff uses this module yet; a sample): limits %(limits)s.')
            if sample
            else gettext_noop('Template "%(name)s": limits %(limits)s.')
        )
        report.add(check, Status.OK, message, {"name": name, "limits": shown}, fields=sorted(values), limits=limits)
