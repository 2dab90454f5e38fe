"""What a panel's connection settings must look like before anything is sent to it."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from billing.validators import is_host_name


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
    if not is_host_name(parts.hostname):
        raise ValidationError(_("%(host)s is not a valid host name.") % {"host": parts.hostname})
    if parts.username or parts.password:
        raise ValidationError(_("Do not put a login or password in the URL: use the Username and Password fields."))
    if port == 0:
        raise ValidationError(_("Enter a valid port number."))
    if parts.query or parts.fragment:
        # Clients see the module's URL on their service page: nothing may ride along in it.
        raise ValidationError(_("Enter the panel's address without ?… or #…, e.g. https://panel.example.com:1500/ispmgr."))
