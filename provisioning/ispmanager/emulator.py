"""An ISPmanager 5 that runs in-process: the API of docs/ispmanager-api.md over real HTTP.

Users, templates (presets), FTP users, addresses (Business), license.info, whoami, actionlist,
sessions and one-time login keys, Lite and Business editions, root/administrator/reseller/user levels
and the documented error types. Its state is plain dicts that tests read; `faults` makes it misbehave.
Run it alone with `python -m provisioning.ispmanager.emulator --port 1500 --admin root:secret`
(`--help` for the rest).

Switches of its own, besides CoreEmulator's (keyword, attribute, flag):
  form_active=True    `user.edit&elid=LOGIN` (a read) has `active` and `fullname`; False: neither,
                      as the document allows (the `func=user` list always has `active`) (--no-form-active)
  license_text        `license.info`'s `doc.panel_name`; default "ISPmanager Business" or "ISPmanager Lite"
                      by edition. Only the text: the edition alone decides what the panel does. (--license-text TEXT)
An empty or missing `name` on `ipaddr.edit` gives the owner any free address (from 198.51.100.0/24),
as a real panel does; `user.delete` leaves the user's addresses configured (billing deletes them).
"""

import ipaddress
import re

from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_RESELLER, LEVEL_USER
from provisioning.coremanager.emulator import Caller, CoreEmulator, PanelFault, ok, panel_options, serve_forever
from provisioning.ispmanager.client import LIMIT_PREFIX

LOGIN_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")  # fullmatch: a trailing newline is no login
FLAG_LIMITS = frozenset({"limit_shell", "limit_ssl", "limit_cgi"})
# Where "pick any free address" picks from: a documentation network, so that a test sees it was not asked for.
ANY_FREE_ADDRESS_FROM = ipaddress.ip_network("198.51.100.0/24")


class ISPmanagerEmulator(CoreEmulator):
    path = "/ispmgr"

    def __init__(
        self,
        *,
        edition: str = "business",
        admins: dict | None = None,
        roots: dict | None = None,
        resellers: dict | None = None,
        form_active: bool = True,
        license_text: str | None = None,
        **switches,
    ):
        """`switches`: CoreEmulator's (whoami_level, page_size, short_pages, missing_functions, rename)."""
        if not (admins or roots):
            admins = {"root": "secret"}
        super().__init__(admins=admins, roots=roots, **switches)
        if edition not in ("lite", "business"):
            raise ValueError("edition is lite or business")
        self.edition = edition
        self.form_active = form_active
        self.license_text = f"ISPmanager {edition.capitalize()}" if license_text is None else license_text
        for name, password in (resellers or {}).items():
            if edition == "lite":
                raise ValueError("ISPmanager Lite has no resellers")
            self.accounts[name] = (password, LEVEL_RESELLER)
        self.users: dict[str, dict] = {}
        self.presets: dict[str, dict] = {}
        self.ftp_users: dict[str, dict] = {}
        self.ip_addresses: dict[str, dict] = {}  # address -> owner, iprole

    @property
    def functions(self):
        return {
            "license.info": self.license_info,
            "whoami": self.whoami,
            "user": self.user_list,
            "user.edit": self.user_edit,
            "user.add.finish": self.user_add,
            "user.suspend": self.user_suspend,
            "user.resume": self.user_resume,
            "user.delete": self.user_delete,
            "usrparam": self.usrparam,
            "preset": self.preset_list,
            "preset.edit": self.preset_edit,
            "ftp.user": self.ftp_user_list,
            "ftp.user.edit": self.ftp_user_edit,
            "ftp.user.suspend": self.ftp_user_suspend,
            "ftp.user.resume": self.ftp_user_resume,
            "ftp.user.delete": self.ftp_user_delete,
            "session.newkey": self.session_newkey,
            "ipaddr": self.ipaddr_list,
            "ipaddr.edit": self.ipaddr_edit,
            "ipaddr.delete": self.ipaddr_delete,
        }

    # Panel users are callers too (level 16), with their own password.

    def authenticate(self, name, password):
        user = self.users.get(name)
        if user and user["active"] and user["password"] == password:
            return Caller(name, LEVEL_USER)
        return super().authenticate(name, password)

    def caller_named(self, name):
        if name in self.users:
            return Caller(name, LEVEL_USER)
        return super().caller_named(name)

    # Setup for tests and the demo.

    def add_preset(self, name: str, **limits) -> None:
        self.presets[name] = {key: str(value) for key, value in limits.items()}

    # What --state keeps: the panel's data, not its logins (given on the command line) or sessions.

    def state(self) -> dict:
        return {"users": self.users, "presets": self.presets, "ftp_users": self.ftp_users, "ip_addresses": self.ip_addresses}

    def restore(self, state: dict) -> None:
        for name, table in self.state().items():
            table.clear()
            table.update(state[name])

    # Functions.

    def license_info(self, caller, params):
        return {"mgr": {"$": "ispmgr"}, "panel_name": {"$": self.license_text}, "license": {"$": "emulator"}}

    def user_list(self, caller, params):
        self._need(caller, LEVEL_RESELLER)
        rows = []
        for user in self._visible_users(caller):
            row = {"name": user["name"], "active": "on" if user["active"] else "off", "level": LEVEL_USER}
            row |= {"quota_total": user["limits"].get("limit_quota", ""), "quota_used": "0"}
            if self.edition == "business":
                row["owner"] = user["owner"]
            rows.append(row)
        return self.listing(rows, params)

    def user_edit(self, caller, params):
        if "elid" not in params:
            if params.get("sok"):
                return self.user_add(caller, params)
            raise PanelFault("value", "elid", "Select a user")
        user = self._user(caller, params["elid"], "elid")
        if not params.get("sok"):
            values = {"name": user["name"], "preset": user["preset"]}
            if self.form_active:
                values |= {"fullname": user["fullname"], "active": user["active"]}
            if self.edition == "business":
                values["owner"] = user["owner"]
            return {key: {"$": self._flag(value)} for key, value in (values | user["limits"]).items()}
        if "preset" in params and params["preset"] and params["preset"] not in self.presets:
            raise PanelFault("value", "preset", f"Template '{params['preset']}' not found")
        if "passwd" in params:
            user["password"] = self._password(params)
        user["limits"] |= self._limits(params)
        for key in ("preset", "fullname"):
            if key in params:
                user[key] = params[key]
        return ok(id=user["name"])

    def user_add(self, caller, params):
        self._need(caller, LEVEL_RESELLER)
        name = params.get("name", "")
        if not LOGIN_RE.fullmatch(name):
            raise PanelFault("value", "name", f"Invalid user name '{name}'")
        if name in self.users or name in self.accounts:
            raise PanelFault("exists", "user", f"User '{name}' already exists")
        password = self._password(params)
        preset = params.get("preset", "")
        if preset and preset not in self.presets:
            raise PanelFault("value", "preset", f"Template '{preset}' not found")
        limits = dict(self.presets.get(preset, {})) | self._limits(params)
        owner = caller.name if caller.level < LEVEL_ADMIN else params.get("owner") or caller.name
        self.users[name] = {
            "name": name,
            "password": password,
            "fullname": params.get("fullname", ""),
            "preset": preset,
            "owner": owner,
            "active": True,
            "limits": limits,
            "domain": params.get("domain", ""),
        }
        return ok(id=name)

    def user_suspend(self, caller, params):
        for user in self._group(caller, params):
            user["active"] = False
        return ok()

    def user_resume(self, caller, params):
        for user in self._group(caller, params):
            user["active"] = True
        return ok()

    def user_delete(self, caller, params):
        users = [self._user(caller, name, "elid") for name in self._elids(params)]
        for user in users:
            del self.users[user["name"]]
            for ftp_name in [name for name, ftp in self.ftp_users.items() if ftp["owner"] == user["name"]]:
                del self.ftp_users[ftp_name]
        return ok()

    def usrparam(self, caller, params):
        target = self._acting_as(caller, params)
        if params.get("sok") and "passwd" in params:
            if target.level != LEVEL_USER:
                raise PanelFault("access", "usrparam", "Only a user's own settings are changed here")
            self.users[target.name]["password"] = self._password(params)
            return ok()
        return {"name": {"$": target.name}}

    def preset_list(self, caller, params):
        self._need(caller, LEVEL_RESELLER)
        return self.listing([{"name": name} for name in self.presets], params)

    def preset_edit(self, caller, params):
        self._need(caller, LEVEL_RESELLER)
        if "elid" in params and not params.get("sok"):
            if params["elid"] not in self.presets:
                raise PanelFault("value", "elid", f"Template '{params['elid']}' not found")
            limits = self.presets[params["elid"]]
            return {"name": {"$": params["elid"]}} | {key: {"$": value} for key, value in limits.items()}
        if not params.get("sok"):
            raise PanelFault("value", "elid", "Select a template")
        self._need(caller, LEVEL_ADMIN)
        if "elid" in params:
            if params["elid"] not in self.presets:
                raise PanelFault("value", "elid", f"Template '{params['elid']}' not found")
            self.presets[params["elid"]] |= self._limits(params)
            return ok(id=params["elid"])
        name = params.get("name", "")
        if not name:
            raise PanelFault("value", "name", "Enter the template name")
        if name in self.presets:
            raise PanelFault("exists", "preset", f"Template '{name}' already exists")
        self.presets[name] = self._limits(params)
        return ok(id=name)

    def ftp_user_list(self, caller, params):
        owner = self._acting_as(caller, params)
        rows = [
            {"name": name, "owner": ftp["owner"], "home": ftp["home"], "active": "on" if ftp["active"] else "off"}
            for name, ftp in self.ftp_users.items()
            if owner.level >= LEVEL_ADMIN or ftp["owner"] == owner.name
        ]
        return self.listing(rows, params)

    def ftp_user_edit(self, caller, params):
        acting = self._acting_as(caller, params)
        if "elid" in params:
            ftp = self._ftp_user(acting, params["elid"])
            if not params.get("sok"):
                return {key: {"$": str(value)} for key, value in ftp.items() if key != "password"}
            if "passwd" in params:
                ftp["password"] = self._password(params)
            if "home" in params:
                ftp["home"] = params["home"]
            return ok(id=params["elid"])
        owner = params.get("owner") if acting.level >= LEVEL_ADMIN else acting.name
        if owner not in self.users:
            raise PanelFault("value", "owner", f"User '{owner}' not found")
        user = self.users[owner]
        name = params.get("name", "")
        if not re.fullmatch(r"[a-z0-9_.-]{1,32}(@[a-z0-9.-]+)?", name):
            raise PanelFault("value", "name", f"Invalid FTP user name '{name}'")
        if name in self.ftp_users:
            raise PanelFault("exists", "ftp.user", f"FTP user '{name}' already exists")
        limit = user["limits"].get("limit_ftp_users", "")
        if limit != "" and sum(ftp["owner"] == owner for ftp in self.ftp_users.values()) >= int(limit):
            raise PanelFault("limit", "ftp.user", "The FTP users limit is reached")
        self.ftp_users[name] = {"name": name, "owner": owner, "home": params.get("home", "/"), "active": True}
        self.ftp_users[name]["password"] = self._password(params)
        return ok(id=name)

    def ftp_user_suspend(self, caller, params):
        for name in self._elids(params):
            self._ftp_user(self._acting_as(caller, params), name)["active"] = False
        return ok()

    def ftp_user_resume(self, caller, params):
        for name in self._elids(params):
            self._ftp_user(self._acting_as(caller, params), name)["active"] = True
        return ok()

    def ftp_user_delete(self, caller, params):
        acting = self._acting_as(caller, params)
        for name in self._elids(params):
            self._ftp_user(acting, name)
            del self.ftp_users[name]
        return ok()

    def session_newkey(self, caller, params):
        self._need(caller, LEVEL_ADMIN)
        name, key = params.get("username", ""), params.get("key", "")
        if name not in self.users:
            raise PanelFault("value", "username", f"User '{name}' not found")
        if len(key) < 16:
            raise PanelFault("value", "key", "The key must be at least 16 characters long")
        self.login_keys[key] = name
        return ok()

    def ipaddr_list(self, caller, params):
        self._need(caller, LEVEL_ADMIN)
        return self.listing([{"name": address} | ip for address, ip in self.ip_addresses.items()], params)

    def ipaddr_edit(self, caller, params):
        """Assign an address to a user (`name`, `iprole=assigned`, `owner`); no `name`: any free address."""
        self._need(caller, LEVEL_ADMIN)
        if self.edition == "lite":
            raise PanelFault("access", "ipaddr", "ISPmanager Lite does not assign IP addresses to users")
        owner = params.get("owner", "")
        if owner not in self.users:
            raise PanelFault("value", "owner", f"User '{owner}' not found")
        address = params.get("name") or self._any_free_address()
        current = self.ip_addresses.get(address)
        if current and current["owner"] != owner:
            raise PanelFault("exists", "ipaddr", f"{address} is assigned to {current['owner']}")
        self.ip_addresses[address] = {"owner": owner, "iprole": params.get("iprole", "assigned")}
        return ok(id=address)

    def ipaddr_delete(self, caller, params):
        self._need(caller, LEVEL_ADMIN)
        address = params.get("elid", "")
        if address not in self.ip_addresses:
            raise PanelFault("value", "elid", f"Address {address} not found")
        del self.ip_addresses[address]
        return ok()

    # Helpers.

    def _any_free_address(self) -> str:
        for host in ANY_FREE_ADDRESS_FROM.hosts():
            if str(host) not in self.ip_addresses:
                return str(host)
        raise PanelFault("limit", "ipaddr", "There are no free IP addresses")

    def _need(self, caller: Caller, level: int) -> None:
        if caller.level < level:
            raise PanelFault("access", "func", "Insufficient privileges")

    def _visible_users(self, caller: Caller) -> list[dict]:
        return [user for user in self.users.values() if self._sees(caller, user)]

    @staticmethod
    def _sees(caller: Caller, user: dict) -> bool:
        """Administrators see every user; a reseller its own (one look, not a walk over all users)."""
        return caller.level >= LEVEL_ADMIN or user["owner"] == caller.name

    def _user(self, caller: Caller, name: str, field: str) -> dict:
        self._need(caller, LEVEL_RESELLER)
        user = self.users.get(name)
        if user is None or not self._sees(caller, user):
            raise PanelFault("value", field, f"User '{name}' not found")
        return user

    def _group(self, caller: Caller, params: dict) -> list[dict]:
        self._need(caller, LEVEL_RESELLER)
        names = self._elids(params)
        visible = {user["name"] for user in self._visible_users(caller)}
        missing = [name for name in names if name not in visible]
        if missing:
            raise PanelFault("missed", "users", f"Users not found: {', '.join(missing)}")
        return [self.users[name] for name in names]

    def _acting_as(self, caller: Caller, params: dict) -> Caller:
        """`su=LOGIN` lets an administrator act as that user."""
        su = params.get("su")
        if not su:
            return caller
        self._need(caller, LEVEL_ADMIN)
        if su not in self.users:
            raise PanelFault("value", "su", f"User '{su}' not found")
        return Caller(su, LEVEL_USER)

    def _ftp_user(self, acting: Caller, name: str) -> dict:
        ftp = self.ftp_users.get(name)
        if ftp is None or (acting.level < LEVEL_ADMIN and ftp["owner"] != acting.name):
            raise PanelFault("value", "elid", f"FTP user '{name}' not found")
        return ftp

    @staticmethod
    def _elids(params: dict) -> list[str]:
        return [name.strip() for name in params.get("elid", "").split(",") if name.strip()]

    @staticmethod
    def _password(params: dict) -> str:
        password = params.get("passwd", "")
        if not password:
            raise PanelFault("value", "passwd", "Enter the password")
        if params.get("confirm") != password:
            raise PanelFault("value", "confirm", "The passwords do not match")
        return password

    @staticmethod
    def _limits(params: dict) -> dict:
        limits = {}
        for key, value in params.items():
            if not key.startswith(LIMIT_PREFIX):
                continue
            valid = value in ("on", "off") if key in FLAG_LIMITS else value == "" or value.isdigit()
            if not valid:
                raise PanelFault("value", key, f"Invalid value '{value}' of {key}")
            limits[key] = value
        return limits

    @staticmethod
    def _flag(value) -> str:
        return ("on" if value else "off") if isinstance(value, bool) else str(value)


def main():
    def add_arguments(panel):
        panel.add_argument("--edition", choices=["business", "lite"], default="business", help="default: business")
        panel.add_argument(
            "--no-form-active", dest="form_active", action="store_false", help="user.edit's form has neither active nor fullname"
        )
        panel.add_argument("--license-text", metavar="TEXT", help="license.info's panel_name (default: ISPmanager Business or Lite)")

    def build(args):
        emulator = ISPmanagerEmulator(
            edition=args.edition, form_active=args.form_active, license_text=args.license_text, **panel_options(args)
        )
        # The seed's example template, so that the demo shows "tariff over template".
        emulator.add_preset("Site hosting", limit_db=25, limit_webdomains=25, limit_quota=10240)
        return emulator

    serve_forever(build, "ISPmanager 5 emulator", 1500, add_arguments=add_arguments)


if __name__ == "__main__":
    main()
