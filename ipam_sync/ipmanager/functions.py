"""The IPmanager function names billing calls, in one place, with the integration's overrides on top.

Only `ip` and `ip.edit` are confirmed by public sources (docs/ipmanager-api.md); every other name is
this project's assumption, so a company whose panel names one differently sets an override on the
integration (admin → IPmanager integration → Advanced) instead of changing code.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# What billing does -> the function it calls for it (the document's defaults).
DEFAULT_FUNCTIONS = {
    "list": "ip",
    "read": "ip.edit",
    "allocate": "ip.edit",
    "release": "ip.delete",
    "groups": "iptype",
    "whoami": "whoami",
    "actionlist": "actionlist",
}
FUNCTION_NAME_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")  # fullmatch


def validate_function_names(overrides) -> None:
    """Overrides as {"release": "ip.free", ...}: known purposes, names like the panel's."""
    if not isinstance(overrides, dict):
        raise ValidationError(_('Give the overrides as a JSON object, e.g. {"release": "ip.free"}.'))
    unknown = sorted(set(overrides) - set(DEFAULT_FUNCTIONS))
    if unknown:
        message = _("%(names)s: no such purpose; known: %(known)s.")
        raise ValidationError(message % {"names": ", ".join(map(str, unknown)), "known": ", ".join(DEFAULT_FUNCTIONS)})
    bad = sorted(str(name) for name in overrides.values() if not isinstance(name, str) or not FUNCTION_NAME_RE.fullmatch(name))
    if bad:
        raise ValidationError(_("%(names)s is not a panel function name (e.g. ip.delete).") % {"names": ", ".join(bad)})


def function_names(overrides: dict | None) -> dict:
    """The names to call: the defaults with the integration's overrides on top."""
    return DEFAULT_FUNCTIONS | (overrides or {})
