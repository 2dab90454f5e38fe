"""ISPmanager 5's API, the functions billing uses (docs/ispmanager-api.md), and nothing else.

Wire details marked "assumed" in that document live here and in the emulator only.
"""

import copy

from django.utils.translation import gettext_noop

from billing.stored_text import StoredText
from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_RESELLER, LEVEL_ROOT, CoreClient, fields, text
from provisioning.coremanager.errors import AuthFailed, NotFound, PermanentError, StateUnknown

LIMIT_PREFIX = "limit_"
ACTIVE_STATES = {"on": True, "off": False}


def level_name(level: int) -> str:
    """The caller's role by its level; root (30) is an administrator with more rights, and counts as one everywhere."""
    if level >= LEVEL_ROOT:
        return "root"
    if level >= LEVEL_ADMIN:
        return "administrator"
    if level >= LEVEL_RESELLER:
        return "reseller"
    return "user"


def edition_of(license_text: str) -> str:
    """ "business" when `license.info`'s text says so in any case, otherwise "lite" (what the text says beyond that varies)."""
    return "business" if "business" in license_text.lower() else "lite"


def active_of(row: dict) -> bool | None:
    """A `func=user` row's state: True for `on`, False for `off`; None when the row does not tell it (no `active`, another value)."""
    return ACTIVE_STATES.get(row.get("active", "").strip())


class ISPmanagerClient(CoreClient):
    def license_text(self) -> str:
        """What `license.info` calls the panel: `doc.panel_name`, with `doc.mgr` after it when both are given."""
        doc = self.call("license.info")
        panel_name, mgr = text(doc.get("panel_name")).strip(), text(doc.get("mgr")).strip()
        if panel_name and mgr and mgr.lower() not in panel_name.lower():
            return f"{panel_name} ({mgr})"
        return panel_name or mgr

    def edition(self) -> str:
        """ "lite" or "business" (see edition_of)."""
        return edition_of(self.license_text())

    def users(self) -> list[dict]:
        """Every user of the `func=user` list, all pages: `name`, `active` (on/off), `owner` (Business), ..."""
        return self.rows("user")

    def user_active(self, name: str) -> bool | None:
        """Whether the user is active, from the `func=user` list (the documented place); None when there is no such user.

        A row that does not tell the state (a column not shown, an unknown value) raises StateUnknown:
        read as "suspended", it would suspend an active service in billing.
        """
        for row in self.users():
            if row.get("name") == name:
                if (active := active_of(row)) is None:
                    message = gettext_noop("the panel's user list does not tell whether %(login)s is active (active: %(value)s)")
                    raise StateUnknown(StoredText(message, {"login": name, "value": row.get("active") or "-"}))
                return active
        return None

    def accepts_login(self, name: str, password: str) -> bool:
        """Whether the panel lets NAME log in with PASSWORD: one `whoami` as that user over the same connection and TLS trust."""
        as_user = copy.copy(self)
        as_user.username, as_user._password = name, password
        try:
            as_user.call("whoami")
        except AuthFailed:
            return False
        return True

    def user(self, name: str) -> dict | None:
        """A user's form (`user.edit`): `limit_*`, `preset`, ... or None when there is no such user.

        Whether the form carries `active` and `fullname` is unconfirmed: read the state with `user_active`.
        """
        try:
            return fields(self.call("user.edit", elid=name))
        except NotFound:
            return None

    def user_create(self, *, name: str, password: str, fullname: str, preset: str, limits: dict, domain: str = "") -> None:
        self.call(
            "user.add.finish", sok="ok", name=name, passwd=password, confirm=password, fullname=fullname, preset=preset,
            domain=domain or None, **limits,
        )  # fmt: skip

    def user_edit(self, name: str, **values) -> None:
        self.call("user.edit", elid=name, sok="ok", **values)

    def user_set_password(self, name: str, password: str) -> None:
        self.user_edit(name, passwd=password, confirm=password)

    def user_suspend(self, name: str) -> None:
        self.call("user.suspend", elid=name)

    def user_resume(self, name: str) -> None:
        self.call("user.resume", elid=name)

    def user_delete(self, name: str) -> bool:
        """Delete a user; False when it was already gone."""
        try:
            self.call("user.delete", elid=name)
        except NotFound:
            return False
        return True

    def session_newkey(self, login: str, key: str) -> None:
        """Let `key` (16 characters or more) log a browser in once as `login`: `func=auth&username=LOGIN&key=KEY`."""
        self.call("session.newkey", username=login, key=key)

    def ip_assign(self, address: str, owner: str) -> None:
        """Give a dedicated address to a user (Business: `ipaddr.edit`, `iprole=assigned`).

        An empty `name` means "pick any free address" to the panel: refused here, before anything is sent.
        """
        if not (address and address.strip()):
            message = gettext_noop("no address to assign to %(owner)s: an empty one would make the panel pick any free address")
            raise PermanentError(StoredText(message, {"owner": owner}))
        self.call("ipaddr.edit", sok="ok", name=address, iprole="assigned", owner=owner)

    def ip_addresses(self) -> list[dict]:
        """The addresses configured in the panel (Business: the `func=ipaddr` list, all pages): `name` (the address), `owner`, ..."""
        return self.rows("ipaddr")

    def ip_unassign(self, address: str) -> bool:
        """Remove a dedicated address from the panel (Business: `ipaddr.delete`); False when it was already gone."""
        try:
            self.call("ipaddr.delete", elid=address)
        except NotFound:
            return False
        return True

    def preset(self, name: str) -> dict | None:
        """A template's fields, or None when there is no such template."""
        try:
            return fields(self.call("preset.edit", elid=name))
        except NotFound:
            return None

    def preset_create(self, name: str, limits: dict | None = None) -> None:
        """A new template; a limit left out is unlimited (field names on create assumed)."""
        self.call("preset.edit", sok="ok", name=name, **(limits or {}))


def limits_of(values: dict) -> dict:
    """The `limit_*` fields of a user or template."""
    return {key: value for key, value in values.items() if key.startswith(LIMIT_PREFIX)}
