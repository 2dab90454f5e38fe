"""Where a webhook may be sent: http(s) to public addresses only, so an endpoint cannot reach into the private network.

Checked when staff save an endpoint and again before every delivery (a name may resolve elsewhere by
then). A delivery resolves the host once, checks every address and connects to one of those: a second
lookup by the HTTP client could answer otherwise (DNS rebinding). WEBHOOK_ALLOW_PRIVATE_ADDRESSES lifts
the address rule for development, the tests and the demo.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SCHEMES = {"http": 80, "https": 443}


# IPv6 ranges that carry an IPv4 address a gateway may turn into a connection to it (NAT64, 6to4,
# IPv4-compatible, Teredo): Python counts some of them as global whatever IPv4 address they hold.
IPV4_CARRIERS = [ipaddress.ip_network(network) for network in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96", "2001::/32")]


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            address = address.ipv4_mapped
        elif any(address in network for network in IPV4_CARRIERS):
            return True
    # is_global is false for loopback, private, link-local, shared (CGNAT), reserved and unspecified addresses.
    return not address.is_global or address.is_multicast or address.is_reserved


def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise ValidationError(_("The host %(host)s cannot be resolved.") % {"host": host}, code="unresolvable") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in found]


@dataclass(frozen=True)
class Destination:
    url: str  # the URL with its host replaced by the checked address: what is connected to
    host: str  # the URL's host (ASCII): sent for TLS (SNI) and the name the certificate must carry
    host_header: str


def _split(url: str) -> SplitResult:
    # A backslash, space or control character lets parsers disagree on the host (urlsplit reads
    # "http://127.0.0.1\\@8.8.8.8/" as 8.8.8.8, urllib3 connects to 127.0.0.1): refused, as is a user
    # part, which a receiver has no use for (deliveries are signed).
    if any(char == "\\" or char.isspace() or not char.isprintable() for char in url):
        raise ValidationError(_("Enter a valid URL."), code="invalid")
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port  # .port raises ValueError for a bad port
    except ValueError:
        raise ValidationError(_("Enter a valid URL."), code="invalid") from None
    if parts.scheme not in SCHEMES:
        raise ValidationError(_("Webhooks are sent over http or https only."), code="scheme")
    if not host:
        raise ValidationError(_("Enter a valid URL."), code="invalid")
    if "@" in parts.netloc:
        raise ValidationError(_("A webhook URL may not hold a user name or password."), code="userinfo")
    return parts


def webhook_url_check(url: str) -> None:
    """Raise ValidationError unless a webhook may be sent to `url`."""
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        _split(url)
    else:
        webhook_destination(url)


def webhook_destination(url: str) -> Destination:
    """Where a delivery to `url` connects: its host resolved once, every address checked, the first one taken."""
    parts = _split(url)
    host, port = parts.hostname, parts.port
    addresses = _resolve(host, port or SCHEMES[parts.scheme])
    refused = [str(address) for address in addresses if _refused(address)]
    if refused and not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        raise ValidationError(
            _("%(host)s is a loopback, private or reserved address (%(addresses)s): webhooks go to public addresses only.")
            % {"host": host, "addresses": ", ".join(refused)},
            code="private_address",
        )
    address = addresses[0]
    if ":" not in host:
        host = host.encode("idna").decode()  # as resolving encoded it
    netloc = f"[{address}]" if address.version == 6 else str(address)
    host_header = f"[{host}]" if ":" in host else host
    if port:
        netloc += f":{port}"
    if port not in (None, SCHEMES[parts.scheme]):
        host_header += f":{port}"
    url = parts._replace(netloc=netloc).geturl()
    return Destination(url=url, host=host, host_header=host_header)
