"""ISPmanager 5's API, the functions billing uses (docs/ispmanager-api.md), and nothing else.

Wire details marked "assumed" in that document live here and in the emulator only.
"""

import re

from django.utils.translation import gettext_noop

from billing.stored_text import StoredText
from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_RESELLER, CoreClient, elems, fields, text
from provisioning.coremanager.errors import NotAPanel, NotFound

LIMIT_PREFIX = "limit_"


def level_name(level: int) -> str:
    if level >= LEVEL_ADMIN:
        return "administrator"
    if level >= LEVEL_RESELLER:
        return "reseller"
    return "user"


class ISPmanagerClient(CoreClient):
    def edition(self) -> str:
        """ "lite" or "business", from `license.info` (`doc.mgr` or `doc.panel_name`)."""
        doc = self.call("license.info")
        name = f"{text(doc.get('panel_name'))} {text(doc.get('mgr'))}".lower()
        for edition in ("lite", "business"):
            if re.search(rf"\b{edition}\b", name):
                return edition
        message = gettext_noop("license.info does not name the edition (Lite or Business): %(name)s")
        raise NotAPanel(StoredText(message, {"name": repr(name.strip())}))

    def whoami(self) -> tuple[str, int]:
        """The caller's login and level (assumed shape: `doc.user.$name`, `$level`)."""
        user = self.call("whoami").get("user", {})
        return user.get("$name", self.username), int(user.get("$level") or 0)

    def users(self) -> list[dict]:
        return elems(self.call("user"))

    def user(self, name: str) -> dict | None:
        """A user's fields, `limit_*` included, or None when there is no such user."""
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

    def ip_assign(self, address: str, owner: str) -> None:
        """Give a dedicated address to a user (Business; assumed: `ipaddr.edit`, `iprole=assigned`)."""
        self.call("ipaddr.edit", sok="ok", name=address, iprole="assigned", owner=owner)

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
