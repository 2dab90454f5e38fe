"""An IPmanager 5 that runs in-process: the API of docs/ipmanager-api.md over real HTTP.

Networks, IP groups, users with pools (an address, a range or a subnet), hidden ranges and allowed
groups, administrators who see every address with its owner. Addresses are kept by their integer
value, so a /16 with tens of thousands of allocations answers quickly. A network's first and last
addresses (network and broadcast) are never handed out. Run it alone with
`python -m ipam_sync.ipmanager.emulator --port 1501 --admin admin:secret` (`--help` for the rest).

Its functions are the document's: `ip`, `ip.edit`, `ip.delete`, `iptype`, `whoami`, `actionlist`
(pools are kept for allocation; no function lists them). The PTR `domain` is stored as given, a
trailing dot included. Switches of its own, besides CoreEmulator's (keyword, attribute, flag):
  allocate_reply_id=True   an allocation (`ip.edit&sok=ok` without `elid`) answers `doc.id` = the address;
                           False: it allocates and answers a bare ok (--no-allocate-id)
CoreEmulator's `rename` (--rename ip.delete=ip.free) gives the panel other function names.
"""

import ipaddress
from dataclasses import dataclass, field

from provisioning.coremanager.client import LEVEL_ADMIN, LEVEL_USER
from provisioning.coremanager.emulator import Caller, CoreEmulator, PanelFault, ok, panel_options, serve_forever


def parse_range(spec: str) -> tuple[int, int]:
    """ "a.b.c.d", "a.b.c.d-e.f.g.h" or "a.b.c.d/nn" as (first, last) integers."""
    spec = spec.strip()
    if "/" in spec:
        network = ipaddress.ip_network(spec, strict=False)
        return int(network.network_address), int(network.broadcast_address)
    first, _, last = spec.partition("-")
    start = int(ipaddress.ip_address(first.strip()))
    end = int(ipaddress.ip_address(last.strip())) if last else start
    if end < start:
        raise ValueError(f"empty range {spec}")
    return start, end


@dataclass
class User:
    password: str
    pools: list[tuple[int, int]] = field(default_factory=list)
    hidden: list[tuple[int, int]] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)

    def may_take(self, ip: int) -> bool:
        return any(first <= ip <= last for first, last in self.pools + self.hidden)


class IPmanagerEmulator(CoreEmulator):
    path = "/ipmgr"

    def __init__(
        self,
        *,
        admins: dict | None = None,
        roots: dict | None = None,
        iptypes=("alias", "public"),
        allocate_reply_id: bool = True,
        **switches,
    ):
        """`switches`: CoreEmulator's (whoami_level, page_size, short_pages, missing_functions, rename)."""
        if not (admins or roots):
            admins = {"admin": "secret"}
        super().__init__(admins=admins, roots=roots, **switches)
        self.allocate_reply_id = allocate_reply_id
        self.networks: list[tuple[int, int]] = []
        self.reserved: set[int] = set()  # network and broadcast addresses
        self.iptypes: set[str] = set(iptypes)
        self.users: dict[str, User] = {}
        self.allocated: dict[int, dict] = {}  # integer address -> ip, iptype, domain, note, owner
        # Released addresses wait for IPmanager's hourly check (ping, DNSBL) before they are handed out again.
        self.checking: set[int] = set()

    @property
    def functions(self):
        return {
            "whoami": self.whoami,
            "ip": self.ip_list,
            "ip.edit": self.ip_edit,
            "ip.delete": self.ip_delete,
            "iptype": self.iptype_list,
        }

    # Setup for tests, the demo and the benchmark.

    def add_network(self, cidr: str) -> None:
        first, last = parse_range(cidr)
        self.networks.append((first, last))
        if last - first >= 3:  # a /31 or /32 (RFC 3021) has no network or broadcast address to keep
            self.reserved |= {first, last}

    def add_user(self, name: str, password: str, *, pools=(), hidden=(), groups=()) -> None:
        """A user with "User" permissions; no pools and no groups makes the "dummy" user."""
        self.users[name] = User(password, [parse_range(p) for p in pools], [parse_range(h) for h in hidden], set(groups))

    def take(self, ip: str, *, owner: str, iptype: str = "alias", domain: str = "", note: str = "") -> None:
        """Mark an address allocated directly (as by hand in the panel)."""
        self.allocated[int(ipaddress.ip_address(ip))] = {"ip": ip, "iptype": iptype, "domain": domain, "note": note, "owner": owner}

    def run_checks(self) -> None:
        """The hourly job: released addresses become free for automatic allocation again."""
        self.checking.clear()

    def owned_by(self, owner: str) -> list[str]:
        return [entry["ip"] for entry in self.allocated.values() if entry["owner"] == owner]

    # What --state keeps: networks, groups, users and addresses; not the administrators (command line) or sessions.

    def state(self) -> dict:
        users = {
            name: {"password": user.password, "pools": user.pools, "hidden": user.hidden, "groups": sorted(user.groups)}
            for name, user in self.users.items()
        }
        return {
            "networks": self.networks,
            "reserved": sorted(self.reserved),
            "iptypes": sorted(self.iptypes),
            "users": users,
            "allocated": list(self.allocated.values()),
            "checking": sorted(self.checking),
        }

    def restore(self, state: dict) -> None:
        self.networks = [(first, last) for first, last in state["networks"]]
        self.reserved = set(state["reserved"])
        self.iptypes = set(state["iptypes"])
        self.users = {
            name: User(user["password"], [tuple(r) for r in user["pools"]], [tuple(r) for r in user["hidden"]], set(user["groups"]))
            for name, user in state["users"].items()
        }
        self.allocated = {int(ipaddress.ip_address(entry["ip"])): dict(entry) for entry in state["allocated"]}
        self.checking = set(state["checking"])

    def authenticate(self, name, password):
        user = self.users.get(name)
        if user and user.password == password:
            return Caller(name, LEVEL_USER)
        return super().authenticate(name, password)

    def caller_named(self, name):
        return Caller(name, LEVEL_USER) if name in self.users else super().caller_named(name)

    # Functions.

    def ip_list(self, caller, params):
        admin = caller.level >= LEVEL_ADMIN
        rows = []
        for entry in self.allocated.values():
            if admin or entry["owner"] == caller.name:
                row = {key: entry[key] for key in ("ip", "iptype", "domain", "note")}
                if admin:
                    row["owner"] = entry["owner"]
                rows.append(row)
        return self.listing(rows, params)

    def ip_edit(self, caller, params):
        if "elid" in params:
            entry = self._visible(caller, params["elid"])
            if not params.get("sok"):
                return {key: {"$": value} for key, value in entry.items() if key != "owner" or caller.level >= LEVEL_ADMIN}
            for key in ("domain", "note"):
                if key in params:
                    entry[key] = params[key]
            return ok(id=entry["ip"])
        if not params.get("sok"):
            raise PanelFault("value", "elid", "Select an address")
        return self._allocate(caller, params)

    def ip_delete(self, caller, params):
        names = list(dict.fromkeys(name.strip() for name in params.get("elid", "").split(",") if name.strip()))
        if not names:
            raise PanelFault("value", "elid", "Select an address")
        entries = [self._visible(caller, name, missing="missed") for name in names]
        for entry in entries:
            ip = int(ipaddress.ip_address(entry["ip"]))
            del self.allocated[ip]
            self.checking.add(ip)
        return ok()

    def iptype_list(self, caller, params):
        groups = self.iptypes if caller.level >= LEVEL_ADMIN else self.users[caller.name].groups & self.iptypes
        return self.listing([{"name": name} for name in sorted(groups)], params)

    # Helpers.

    def _visible(self, caller: Caller, ip: str, missing: str = "value") -> dict:
        try:
            entry = self.allocated.get(int(ipaddress.ip_address(ip)))
        except ValueError:
            raise PanelFault("value", "elid", f"'{ip}' is not an IP address") from None
        if entry is None or (caller.level < LEVEL_ADMIN and entry["owner"] != caller.name):
            raise PanelFault(missing, "ip" if missing == "missed" else "elid", f"Address {ip} not found")
        return entry

    def _allocate(self, caller: Caller, params: dict) -> dict:
        if params.get("family", "ipv4") != "ipv4":
            raise PanelFault("value", "family", "Only IPv4 networks are configured")
        iptype = params.get("iptype", "")
        if iptype not in self.iptypes:
            raise PanelFault("value", "iptype", f"Unknown IP group '{iptype}'")
        admin = caller.level >= LEVEL_ADMIN
        user = None if admin else self.users[caller.name]
        if user is not None and iptype not in user.groups:
            raise PanelFault("access", "iptype", f"The IP group '{iptype}' is not allowed for {caller.name}")
        if params.get("ip"):
            ip = self._requested(params["ip"], user)
        else:
            ip = self._next_free(self.networks if admin else user.pools, skip=[] if admin else user.hidden)
        owner = (params.get("owner") or caller.name) if admin else caller.name
        address = str(ipaddress.ip_address(ip))
        self.allocated[ip] = {
            "ip": address,
            "iptype": iptype,
            "domain": params.get("domain", ""),
            "note": params.get("note", ""),
            "owner": owner,
        }
        return ok(id=address) if self.allocate_reply_id else ok()

    def _requested(self, text: str, user: User | None) -> int:
        try:
            ip = int(ipaddress.IPv4Address(text))
        except ValueError:
            raise PanelFault("value", "ip", f"'{text}' is not an IPv4 address") from None
        if not any(first <= ip <= last for first, last in self.networks):
            raise PanelFault("value", "ip", f"{text} is in no network")
        if ip in self.reserved:
            raise PanelFault("value", "ip", f"{text} is the network or broadcast address of its network")
        if user is not None and not user.may_take(ip):
            raise PanelFault("access", "ip", f"{text} is outside your pool")
        if ip in self.allocated:
            raise PanelFault("exists", "ip", f"{text} is already allocated")
        return ip

    def _next_free(self, ranges: list[tuple[int, int]], skip: list[tuple[int, int]]) -> int:
        """The first address of `ranges` inside a network, free, checked, not reserved and not in a hidden range."""
        for first, last in ranges:
            for net_first, net_last in self.networks:
                for ip in range(max(first, net_first), min(last, net_last) + 1):
                    if ip in self.allocated or ip in self.checking or ip in self.reserved or any(a <= ip <= b for a, b in skip):
                        continue
                    return ip
        raise PanelFault("limit", "ip", "There are no free addresses in your pool")


def main():
    def add_arguments(panel):
        panel.add_argument(
            "--no-allocate-id", dest="allocate_reply_id", action="store_false", help="an allocation answers ok without doc.id"
        )

    def build(args):
        emulator = IPmanagerEmulator(allocate_reply_id=args.allocate_reply_id, **panel_options(args))
        # The seed's example: the provider's /24, of which billing's user may take .0-.128.
        emulator.add_network("133.31.223.0/24")
        emulator.add_user("billing", "billing-demo", pools=["133.31.223.0-133.31.223.128"], groups=["alias"])
        return emulator

    serve_forever(build, "IPmanager 5 emulator", 1501, add_arguments=add_arguments)


if __name__ == "__main__":
    main()
