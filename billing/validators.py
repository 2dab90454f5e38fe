"""Field validators shared by the admin forms of every app."""

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

IP_TYPE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


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
    if parts.username or parts.password:
        raise ValidationError(_("Do not put a login or password in the URL: use the Username and Password fields."))
    if port == 0:
        raise ValidationError(_("Enter a valid port number."))


def validate_ip_type_names(names: list[str]) -> None:
    """IPmanager IP group names, as they appear in IPmanager (e.g. alias, public)."""
    bad = [name for name in names if not IP_TYPE_NAME_RE.match(name)]
    if bad:
        raise ValidationError(
            _("%(names)s is not an IP group name: use latin letters, digits, _, - and . (e.g. alias).")
            % {"names": ", ".join(repr(name) for name in bad)}
        )
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValidationError(_("IP group %(names)s is listed twice.") % {"names": ", ".join(duplicates)})
