"""The compatibility probe of a panel: read-only calls, and findings against what billing expects.

Each finding is OK, DIFFERENT (not as documented: billing copes, or a setting should change),
MISSING (something billing needs is not there) or UNKNOWN (it cannot be told without calling a
function that changes something, which a probe never does). Findings hold codes, StoredText and
plain data, so a stored report reads in the language of whoever opens it. What each panel is probed
for lives with its client: provisioning/ispmanager/probe.py, ipam_sync/ipmanager/probe.py.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from billing.stored_text import StoredText
from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_RESELLER, LEVEL_ROOT, LEVEL_USER, CoreClient, elems
from provisioning.coremanager.errors import AccessDenied, CutOff, InvalidValue, NoSuchFunction, NotFound, NotReadOnly, PermanentError

PAGING_FIELDS = ("p_cnt", "p_elems", "p_num")
SAMPLE_SIZE = 5
# A function named so deletes or releases what its elid names, with or without `sok`.
CHANGING_SUFFIXES = (".delete", ".free")


def changes_something(func: str) -> bool:
    """Whether the name alone says that calling `func` changes something (ip.delete, ip.free, user.delete, ...)."""
    return func.endswith(CHANGING_SUFFIXES)


class Status(StrEnum):
    OK = "ok"
    DIFFERENT = "different"
    MISSING = "missing"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return str(STATUS_LABELS[self])


STATUS_LABELS = {Status.OK: _("OK"), Status.DIFFERENT: _("DIFFERENT"), Status.MISSING: _("MISSING"), Status.UNKNOWN: _("UNKNOWN")}


@dataclass(frozen=True)
class Finding:
    """One thing looked at: `check` names it (e.g. "function:user.edit"), `details` holds what was seen."""

    check: str
    status: Status
    message: StoredText
    advice: StoredText = field(default_factory=StoredText)
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "check": self.check,
            "status": str(self.status),
            "message": self.message.to_json(),
            "advice": self.advice.to_json(),
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Finding":
        return cls(
            check=data["check"],
            status=Status(data["status"]),
            message=StoredText.from_json(data["message"]),
            advice=StoredText.from_json(data.get("advice")),
            details=data.get("details", {}),
        )


@dataclass
class Report:
    """What one probe of one module or integration found."""

    panel: str  # "ispmanager" or "ipmanager"
    name: str
    url: str
    username: str
    probed_at: datetime = field(default_factory=timezone.now)
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, status: Status, message: str, params: dict | None = None, *, advice=None, **details) -> Finding:
        """Append a finding; `message` is a msgid (gettext_noop) with `params`, `advice` a StoredText or a msgid."""
        finding = Finding(check, status, StoredText(message, params or {}), _text(advice), details)
        self.findings.append(finding)
        return finding

    def count(self, status: Status) -> int:
        return sum(finding.status == status for finding in self.findings)

    @property
    def ok(self) -> bool:
        """Nothing billing needs is missing (differences and unverified points may remain)."""
        return not self.count(Status.MISSING)

    @property
    def summary(self) -> StoredText:
        return StoredText(
            gettext_noop("missing: %(missing)d, different: %(different)d, not verified: %(unknown)d, OK: %(ok)d"),
            {status.name.lower(): self.count(status) for status in Status},
        )

    def to_json(self) -> dict:
        return {
            "panel": self.panel,
            "name": self.name,
            "url": self.url,
            "username": self.username,
            "probed_at": self.probed_at.isoformat(),
            "findings": [finding.to_json() for finding in self.findings],
        }

    @classmethod
    def from_json(cls, data: dict) -> "Report":
        return cls(
            panel=data["panel"],
            name=data["name"],
            url=data["url"],
            username=data["username"],
            probed_at=datetime.fromisoformat(data["probed_at"]),
            findings=[Finding.from_json(finding) for finding in data["findings"]],
        )

    def rendered(self) -> dict:
        """The report in the active language, for `panel_probe --json`."""
        findings = [
            {"check": f.check, "status": str(f.status), "message": f.message.render(), "advice": f.advice.render(), "details": f.details}
            for f in self.findings
        ]
        head = {key: value for key, value in self.to_json().items() if key != "findings"}
        return head | {"ok": self.ok, "summary": self.summary.render(), "findings": findings}


def _text(value) -> StoredText:
    if value is None or isinstance(value, StoredText):
        return value or StoredText()
    return StoredText(value)


def report_store(*, connection, report: Report) -> None:
    """Keep the report as the connection's last one (an update of two columns: no history row, no other field touched)."""
    connection.probe_report, connection.probed_at = report.to_json(), report.probed_at
    type(connection).objects.filter(pk=connection.pk).update(probe_report=connection.probe_report, probed_at=report.probed_at)


def stored_report(connection) -> Report | None:
    """The connection's last report; None when it was never probed or the stored report is not one this code can read."""
    try:
        return Report.from_json(connection.probe_report) if connection.probe_report else None
    except (KeyError, TypeError, ValueError):
        return None


# Reading the panel.


class Presence(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    DENIED = "denied"  # the function exists, but the caller may not call it


class ReadOnlyPanel:
    """The probe's only way to a panel: calls that read, never one with `sok`; remembers which functions answered.

    `never`: functions this panel changes something with under another name (an integration's release
    function), refused like every `*.delete` and `*.free`, whatever a setting points a read at.
    """

    def __init__(self, connection, *, username: str, password: str, timeout: tuple[float, float], never=()):
        self.username, self._password = username, password
        self.never = frozenset(never)
        self.client = CoreClient(
            connection.url, username, password, verify=connection.verify_tls, ca_certificate=connection.ca_certificate, timeout=timeout
        )
        self.seen: dict[str, Presence] = {}

    def call(self, func: str, **params) -> dict:
        return self._read(func, self.client.call, params)

    def rows(self, func: str, **params) -> list[dict]:
        return self._read(func, self.client.rows, params)

    def _read(self, func: str, read, params: dict):
        if "sok" in params:  # `sok` submits a form: a change, whatever the function
            raise ValueError(f"a probe does not submit forms ({func})")
        if func in self.never or changes_something(func):
            raise NotReadOnly(StoredText(gettext_noop("%(func)s changes something: a probe never calls it"), {"func": func}))
        try:
            result = read(func, **params)
        except NoSuchFunction:
            self.seen[func] = Presence.ABSENT
            raise
        except AccessDenied:
            self.seen.setdefault(func, Presence.DENIED)
            raise
        except (NotFound, InvalidValue):  # the function itself refused a value: it exists
            self.seen[func] = Presence.PRESENT
            raise
        self.seen[func] = Presence.PRESENT
        return result

    def presence(self, func: str, listed: set[str] | None) -> Presence | None:
        """What a call or the function list showed of `func`; None when neither could tell."""
        if func in self.seen:
            return self.seen[func]
        if listed is None:
            return None
        return Presence.PRESENT if func in listed else Presence.ABSENT

    def levels(self, whoami: str = "whoami") -> "Caller":
        """The caller's name and level as `whoami` and `func=auth` each tell it."""
        user = self.call(whoami).get("user", {})
        name = user.get("$name") or self.username
        try:
            auth = self.call("auth", username=self.username, password=self._password).get("auth", {}).get("$level")
            refused = None
        except PermanentError as error:
            auth, refused = None, error.message
        return Caller(name, _level(user.get("$level")), _level(auth), refused)


def _level(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Caller:
    name: str
    whoami: int | None
    auth: int | None
    auth_refused: StoredText | None = None

    @property
    def level(self) -> int | None:
        """The level billing goes by: whoami's, else auth's (CoreClient.caller)."""
        return self.whoami if self.whoami is not None else self.auth


ROLES = {
    LEVEL_ROOT: gettext_noop("root"),
    LEVEL_ADMIN: gettext_noop("administrator"),
    LEVEL_RESELLER: gettext_noop("reseller"),
    LEVEL_USER: gettext_noop("user"),
}


def role(level: int) -> StoredText:
    """The role of a level, in the reader's language ("administrator"); an undocumented level as its number."""
    return StoredText(ROLES[level]) if level in ROLES else StoredText.of(str(level))


def caller_findings(report: Report, caller: Caller, *, check: str, need: int, prefer: int | None = None, consequence=None) -> None:
    """The caller's level from whoami and from func=auth, and whether it is enough.

    Below `need` billing cannot work (MISSING); below `prefer` it works in part, as `consequence` says (DIFFERENT).
    """
    who = {"user": caller.name}
    if caller.whoami is not None:
        report.add(
            f"{check}:whoami",
            Status.OK,
            gettext_noop("whoami: %(user)s, level %(level)d."),
            who | {"level": caller.whoami},
            level=caller.whoami,
        )
    else:
        report.add(
            f"{check}:whoami",
            Status.DIFFERENT,
            gettext_noop("whoami names %(user)s but gives no level."),
            who,
            advice=gettext_noop("Nothing to change: billing then reads the level from func=auth."),
        )
    if caller.auth is not None:
        report.add(f"{check}:auth", Status.OK, gettext_noop("func=auth: level %(level)d."), {"level": caller.auth}, level=caller.auth)
    elif caller.auth_refused:
        report.add(f"{check}:auth", Status.DIFFERENT, gettext_noop("func=auth refused: %(error)s"), {"error": caller.auth_refused})
    else:
        report.add(f"{check}:auth", Status.DIFFERENT, gettext_noop("func=auth gives no level."))
    level = caller.level
    if level is None:
        report.add(
            f"{check}:level",
            Status.UNKNOWN,
            gettext_noop("Neither whoami nor func=auth tells the level of %(user)s."),
            who,
            advice=StoredText(gettext_noop("Make sure %(user)s has at least the level %(need)d (%(role)s)."), who | _need(need)),
        )
        return
    found = who | {"level": level, "role": role(level)}
    seen = {"level": level, "whoami": caller.whoami, "auth": caller.auth}
    if caller.whoami is not None and caller.auth is not None and caller.whoami != caller.auth:
        report.add(
            f"{check}:agree",
            Status.DIFFERENT,
            gettext_noop("whoami says level %(whoami)d, func=auth says %(auth)d; billing goes by whoami's."),
            {"whoami": caller.whoami, "auth": caller.auth},
        )
    if level < need:
        report.add(
            f"{check}:level",
            Status.MISSING,
            gettext_noop("%(user)s has level %(level)d (%(role)s): billing needs level %(need)d (%(need_role)s) or higher."),
            found | _need(need, "need_role"),
            advice=gettext_noop("Give a login of the needed level."),
            **seen,
        )
    elif prefer is not None and level < prefer:
        report.add(
            f"{check}:level",
            Status.DIFFERENT,
            gettext_noop("%(user)s has level %(level)d (%(role)s): %(consequence)s"),
            found | {"consequence": StoredText(consequence)},
            advice=StoredText(gettext_noop("Give a login of level %(need)d (%(role)s) or higher."), _need(prefer)),
            **seen,
        )
    else:
        report.add(f"{check}:level", Status.OK, gettext_noop("%(user)s has level %(level)d (%(role)s): enough."), found, **seen)


def _need(level: int, key: str = "role") -> dict:
    return {"need": level, key: role(level)}


def read_function_list(report: Report, panel: ReadOnlyPanel, func: str = "actionlist") -> set[str] | None:
    """The panel's functions from `actionlist` (`func`), or None when it has none, refuses it, or answers in another shape."""
    unverified = gettext_noop(
        "Without it, functions that change something are reported as not verified: a probe never calls them to find out."
    )
    try:
        rows = panel.rows(func)
    except (NoSuchFunction, AccessDenied, CutOff) as error:  # a cut-off list cannot tell what the panel lacks
        message = gettext_noop("No function list: %(func)s answered %(error)s")
        report.add("actionlist", Status.DIFFERENT, message, {"func": func, "error": error.message}, advice=unverified)
        return None
    names = {row["name"] for row in rows if row.get("name")}
    if not names:
        fields = sorted({key for row in rows for key in row})
        report.add(
            "actionlist",
            Status.DIFFERENT,
            gettext_noop("%(func)s answered %(count)d rows without a name field (fields: %(fields)s)."),
            {"func": func, "count": len(rows), "fields": ", ".join(fields) or "—"},
            advice=unverified,
        )
        return None
    report.add("actionlist", Status.OK, gettext_noop("%(func)s lists %(count)d functions."), {"func": func, "count": len(names)})
    return names


def function_finding(
    report: Report,
    *,
    func: str,
    purpose: str,
    presence: Presence | None,
    absent_status: Status = Status.MISSING,
    advice=None,
    check: str | None = None,
    **details,
) -> None:
    """Whether the panel has `func` (for `purpose`, a msgid); `advice` says what to do when it has not."""
    params = {"func": func, "purpose": StoredText(purpose)}
    check, details = check or f"function:{func}", {"func": func} | details
    if presence == Presence.PRESENT:
        report.add(check, Status.OK, gettext_noop("%(func)s (%(purpose)s): present."), params, **details)
    elif presence == Presence.DENIED:
        message = gettext_noop("%(func)s (%(purpose)s): the panel refuses it to this login.")
        advice = advice or gettext_noop("Give a login that may call it (an administrator).")
        report.add(check, Status.MISSING, message, params, advice=advice, **details)
    elif presence == Presence.ABSENT:
        report.add(
            check, absent_status, gettext_noop("%(func)s (%(purpose)s): the panel has no such function."), params, advice=advice, **details
        )
    else:
        message = gettext_noop("%(func)s (%(purpose)s): not verified (no function list, and it changes something).")
        report.add(check, Status.UNKNOWN, message, params, advice=advice, **details)


@dataclass
class ListReply:
    rows: list[dict]
    paging: list[str]  # the paging fields the first reply carried
    cut: StoredText | None = None  # why the list could not be read whole


def read_list(panel: ReadOnlyPanel, func: str) -> ListReply:
    """A list function's rows, every page read when the reply is paged; a cut-off list keeps its first page."""
    doc = panel.call(func)
    paging = [name for name in PAGING_FIELDS if name in doc]
    if not paging:
        return ListReply(elems(doc), paging)
    try:
        return ListReply(panel.rows(func), paging)
    except CutOff as error:
        return ListReply(elems(doc), paging, error.message)


def list_findings(
    report: Report, reply: ListReply, *, func: str, user: str, needed: tuple[str, ...], documented: tuple[str, ...], check: str = ""
) -> None:
    """The fields a list's rows carry against those billing reads (`needed`) and the document lists; its paging."""
    check = check or f"list:{func}"
    seen = sorted({key for row in reply.rows for key in row})
    details = {"fields": seen, "needed": list(needed), "documented": list(documented), "paging": reply.paging, "rows": len(reply.rows)}
    if not reply.rows:
        report.add(
            f"{check}:fields",
            Status.UNKNOWN,
            gettext_noop("%(func)s as %(user)s: the list is empty, so its fields cannot be seen."),
            {"func": func, "user": user},
            **details,
        )
    elif lacking := [name for name in needed if name not in seen]:
        report.add(
            f"{check}:fields",
            Status.MISSING,
            gettext_noop("%(func)s as %(user)s: the rows have no %(lacking)s, which billing reads (fields seen: %(fields)s)."),
            {"func": func, "user": user, "lacking": ", ".join(lacking), "fields": ", ".join(seen)},
            advice=gettext_noop("Check that the login may see these columns of the list."),
            **details,
        )
    elif lacking := [name for name in documented if name not in seen]:
        report.add(
            f"{check}:fields",
            Status.DIFFERENT,
            gettext_noop("%(func)s as %(user)s: the rows have no %(lacking)s, which the document lists (fields seen: %(fields)s)."),
            {"func": func, "user": user, "lacking": ", ".join(lacking), "fields": ", ".join(seen)},
            **details,
        )
    else:
        report.add(
            f"{check}:fields",
            Status.OK,
            gettext_noop("%(func)s as %(user)s: rows %(count)d, fields: %(fields)s."),
            {"func": func, "user": user, "count": len(reply.rows), "fields": ", ".join(seen)},
            **details,
        )
    if reply.cut:
        report.add(
            f"{check}:paging",
            Status.MISSING,
            gettext_noop("%(func)s cannot be read whole: %(reason)s."),
            {"func": func, "reason": reply.cut},
            advice=gettext_noop('Raise the "Number of records" of this login in the panel, so that every row arrives.'),
            paging=reply.paging,
        )
    elif reply.paging:
        report.add(
            f"{check}:paging",
            Status.OK,
            gettext_noop("%(func)s is paged (%(fields)s): every page was read."),
            {"func": func, "fields": ", ".join(reply.paging)},
            paging=reply.paging,
        )
    else:
        report.add(
            f"{check}:paging", Status.OK, gettext_noop("%(func)s comes in one reply, without paging fields."), {"func": func}, paging=[]
        )


def connection_failed(
    report: Report, error, *, check: str = "connection", message: str = gettext_noop("The panel could not be probed: %(error)s")
) -> None:
    """The panel could not be asked (unreachable, wrong password, not a panel): nothing more can be probed with this login."""
    report.add(check, Status.MISSING, message, {"error": error.message})
