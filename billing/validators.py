"""Field validators shared by the admin forms of every app."""

import ipaddress
import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Used with fullmatch: `$` would also accept a trailing newline ("alias\n").
IP_TYPE_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HOST_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def is_host_name(host: str) -> bool:
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
    if not domain or "." not in domain.strip(".") or ":" in domain or not is_host_name(domain):
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


def validate_few_lines(value: str) -> None:
    """An address: at most 10 lines."""
    if value.count("\n") >= 10:
        raise ValidationError(_("Use at most 10 lines."))
