"""Field validators shared by the admin forms of every app."""

import ipaddress
import re
import unicodedata
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Used with fullmatch: `$` would also accept a trailing newline ("alias\n").
IP_TYPE_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOST_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _is_host_name(host: str) -> bool:
    """A DNS name (internationalized names allowed) or an IP address."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return len(ascii_host) <= 253 and all(_HOST_LABEL_RE.fullmatch(label) for label in ascii_host.rstrip(".").split("."))


def validate_panel_url(url: str) -> None:
    """A control panel's full URL: http(s), a host, and no credentials inside it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValidationError(_("Enter a valid URL (%(error)s).") % {"error": error}) from error
    if parts.scheme not in ("http", "https"):
        raise ValidationError(_("The URL must start with https:// (or http://), e.g. https://panel.example.com:1500/ispmgr."))
    if not parts.hostname:
        raise ValidationError(_("The URL must name the panel's host, e.g. https://panel.example.com:1500/ispmgr."))
    if not _is_host_name(parts.hostname):
        raise ValidationError(_("%(host)s is not a valid host name.") % {"host": parts.hostname})
    if parts.username or parts.password:
        raise ValidationError(_("Do not put a login or password in the URL: use the Username and Password fields."))
    if port == 0:
        raise ValidationError(_("Enter a valid port number."))


def validate_ip_type_names(names: list[str]) -> None:
    """IPmanager IP group names, as they appear in IPmanager (e.g. alias, public)."""
    bad = [name for name in names if not IP_TYPE_NAME_RE.fullmatch(name)]
    if bad:
        raise ValidationError(
            _("%(names)s is not an IP group name: use latin letters, digits, _, - and . (e.g. alias).")
            % {"names": ", ".join(repr(name) for name in bad)}
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValidationError(_("IP group %(names)s is listed twice.") % {"names": ", ".join(duplicates)})


def validate_domain(domain: str) -> None:
    """A domain name a site can live on, e.g. example.com or пример.рф."""
    if not domain or "." not in domain.strip(".") or ":" in domain or not _is_host_name(domain):
        raise ValidationError(_("%(domain)s is not a domain name: enter one like example.com.") % {"domain": domain or "''"})
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return
    raise ValidationError(_("Enter a domain name, not an IP address."))


def validate_one_line(value: str) -> None:
    """A name sent to a panel as it is (e.g. an account template): no line breaks or other control characters."""
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise ValidationError(_("Use one line of visible characters: line breaks and control characters are not allowed."))
