"""IPmanager 5's API, the functions billing uses (docs/ipmanager-api.md), and nothing else.

IPmanager shares COREmanager with ISPmanager: same transport, replies and errors. The names of the
functions and of the allocation's parameters are the integration's (ipam_sync/ipmanager/functions.py):
only `ip` and `ip.edit` are confirmed, the rest may differ on a given panel.
"""

import ipaddress
from dataclasses import dataclass

from django.utils.translation import gettext_noop

from billing.stored_text import StoredText
from ipam_sync.ipmanager.functions import function_names
from provisioning.coremanager.client import CoreClient, fields, text
from provisioning.coremanager.errors import AccessDenied, NotFound, PermanentError, TransientError

DEFAULT_IP_TYPE = "alias"
FAMILIES = {"ipv4": ipaddress.IPv4Address, "ipv6": ipaddress.IPv6Address}


class AllocationUnconfirmed(TransientError):
    """An allocation's reply names no address the panel is seen to have taken for us: it may still have taken one.

    No `doc.id`, an address of another family, or one that, read back, does not carry the allocation's
    note (a network or broadcast address, somebody else's). The address is then found by its note;
    a wrong or empty one must never be recorded or sent on (an empty `name` makes ISPmanager pick any address).
    """


@dataclass(frozen=True)
class Address:
    ip: str
    iptype: str
    domain: str = ""
    note: str = ""
    owner: str = ""  # given to administrators only


def _address(values: dict) -> Address:
    return Address(
        ip=values.get("ip", ""),
        iptype=values.get("iptype", ""),
        domain=values.get("domain", ""),
        note=values.get("note", ""),
        owner=values.get("owner", ""),
    )


def canonical(ip: str, family: str | None = None) -> str:
    """The address in its standard form, or "" when it is not one (of `family`, "ipv4" or "ipv6", when given)."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    return str(address) if family is None or isinstance(address, FAMILIES.get(family, ())) else ""


class IPmanagerClient(CoreClient):
    """`function_overrides`: the integration's {purpose: name} on top of the document's defaults."""

    def __init__(self, *args, function_overrides: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.functions = function_names(function_overrides)
        self.whoami_function = self.functions["whoami"]

    def addresses(self) -> list[Address]:
        """Every address the caller sees, all pages: a user its own, an administrator all (with the owner)."""
        return [_address(values) for values in self.rows(self.functions["list"])]

    def address(self, ip: str) -> Address | None:
        try:
            return _address(fields(self.call(self.functions["read"], elid=ip)))
        except NotFound:
            return None

    def allocate(
        self, *, iptype: str, domain: str, note: str, ip: str | None = None, owner: str | None = None, family: str = "ipv4"
    ) -> str:
        """Take the next free address of `iptype` (or the given `ip`); returns the address taken.

        An administrator may allocate on behalf of a user (`owner`). The address the reply names (or,
        when it names none, the given one) counts only when it is of `family` and, read back, carries
        `note`: anything else is AllocationUnconfirmed, and the caller finds what was taken by its note.
        """
        names = self.functions
        params = {"sok": "ok", "family": family, "domain": domain, "note": note}
        params |= {names["allocate_group"]: iptype, names["allocate_address"]: ip, names["allocate_owner"]: owner}
        doc = self.call(names["allocate"], **params)
        replied = text(doc.get("id"))
        named = canonical(replied, family)
        address = named or (canonical(ip, family) if ip else "")
        if not (address and self._carries(address, note)):
            if named:
                message = gettext_noop("IPmanager's %(func)s named %(id)s, which read back does not carry the note %(note)s")
            else:
                message = gettext_noop("IPmanager's %(func)s named no address in its reply (id: %(id)s)")
            raise AllocationUnconfirmed(StoredText(message, {"func": names["allocate"], "id": replied or "-", "note": note or "-"}))
        if ip and address != canonical(ip):
            message = gettext_noop(
                "IPmanager gave %(address)s when asked for %(asked)s: check the name of the allocation's address parameter (%(param)s)"
            )
            raise PermanentError(StoredText(message, {"address": address, "asked": ip, "param": names["allocate_address"]}))
        return address

    def _carries(self, ip: str, note: str) -> bool:
        """Whether the panel has `ip` with `note`, as the caller reads it (the configured read function)."""
        try:
            found = self.address(ip)
        except AccessDenied:  # not the caller's to read: not what it took
            return False
        return found is not None and found.note == note

    def release(self, *ips: str) -> None:
        """Give addresses back (group form `elid=a, b`)."""
        self.call(self.functions["release"], elid=", ".join(ips))

    def iptypes(self) -> list[str]:
        """The IP groups the caller may use."""
        return [values.get("name", "") for values in self.rows(self.functions["groups"])]
