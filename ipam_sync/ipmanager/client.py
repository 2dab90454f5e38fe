"""IPmanager 5's API, the functions billing uses (docs/ipmanager-api.md), and nothing else.

IPmanager shares COREmanager with ISPmanager: same transport, replies and errors. Details the
document marks "assumed" live here and in the emulator only.
"""

from dataclasses import dataclass

from provisioning.coremanager.client import CoreClient, elems, fields, text
from provisioning.coremanager.errors import NotFound

DEFAULT_IP_TYPE = "alias"


@dataclass(frozen=True)
class Address:
    ip: str
    iptype: str
    domain: str = ""
    note: str = ""
    owner: str = ""  # given to administrators only


@dataclass(frozen=True)
class Pool:
    """Part of the addresses a user may take (assumed function `ippool`)."""

    range: str
    size: int
    hidden: bool


def _address(values: dict) -> Address:
    return Address(
        ip=values.get("ip", ""),
        iptype=values.get("iptype", ""),
        domain=values.get("domain", ""),
        note=values.get("note", ""),
        owner=values.get("owner", ""),
    )


class IPmanagerClient(CoreClient):
    def whoami(self) -> tuple[str, int]:
        user = self.call("whoami").get("user", {})
        return user.get("$name", self.username), int(user.get("$level") or 0)

    def addresses(self) -> list[Address]:
        """Every address the caller sees: a user its own, an administrator all (with the owner)."""
        return [_address(values) for values in elems(self.call("ip"))]

    def address(self, ip: str) -> Address | None:
        try:
            return _address(fields(self.call("ip.edit", elid=ip)))
        except NotFound:
            return None

    def allocate(
        self, *, iptype: str, domain: str, note: str, ip: str | None = None, owner: str | None = None, family: str = "ipv4"
    ) -> str:
        """Take the next free address of `iptype` (or the given `ip`); returns the address.

        An administrator may allocate on behalf of a user (`owner`, assumed field).
        """
        doc = self.call("ip.edit", sok="ok", family=family, iptype=iptype, domain=domain, note=note, ip=ip, owner=owner)
        return text(doc.get("id")) or (ip or "")

    def release(self, *ips: str) -> None:
        """Give addresses back (group form `elid=a, b`)."""
        self.call("ip.delete", elid=", ".join(ips))

    def iptypes(self) -> list[str]:
        """The IP groups the caller may use."""
        return [values.get("name", "") for values in elems(self.call("iptype"))]

    def pools(self) -> list[Pool]:
        return [
            Pool(range=values.get("range", ""), size=int(values.get("size") or 0), hidden=values.get("hidden") == "on")
            for values in elems(self.call("ippool"))
        ]
