"""Where a webhook may be sent: http(s) to public addresses only, so an endpoint cannot reach into the private network.

Checked when staff save an endpoint and again before every delivery (a name may resolve elsewhere by
then). WEBHOOK_ALLOW_PRIVATE_ADDRESSES lifts the address rule for development, the tests and the demo.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SCHEMES = {"http": 80, "https": 443}


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # is_global is false for loopback, private, link-local, shared (CGNAT), reserved and unspecified addresses.
    return not address.is_global or address.is_multicast


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


def webhook_url_check(url: str) -> None:
    """Raise ValidationError unless a webhook may be sent to `url`."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValidationError(_("Enter a valid URL."), code="invalid") from None
    if parts.scheme not in SCHEMES:
        raise ValidationError(_("Webhooks are sent over http or https only."), code="scheme")
    if not host:
        raise ValidationError(_("Enter a valid URL."), code="invalid")
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return
    refused = [str(address) for address in _resolve(host, port or SCHEMES[parts.scheme]) if _refused(address)]
    if refused:
        raise ValidationError(
            _("%(host)s is a loopback, private or reserved address (%(addresses)s): webhooks go to public addresses only.")
            % {"host": host, "addresses": ", ".join(refused)},
            code="private_address",
        )
