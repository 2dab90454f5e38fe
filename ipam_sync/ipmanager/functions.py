"""The IPmanager function names billing calls, in one place, with the integration's overrides on top.

Only `ip` and `ip.edit` are confirmed by public sources (docs/ipmanager-api.md); every other name is
this project's assumption, so a company whose panel names one differently sets an override on the
integration (admin → IPmanager integration → Advanced) instead of changing code. The parameters of an
allocation are as unconfirmed as the names, and overridden the same way.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from provisioning.coremanager.probe import changes_something

# What billing does -> the function it calls for it, or the parameter it sends (the document's defaults).
DEFAULT_FUNCTIONS = {
    "list": "ip",
    "read": "ip.edit",
    "allocate": "ip.edit",
    "release": "ip.delete",
    "groups": "iptype",
    "whoami": "whoami",
    "actionlist": "actionlist",
    # Parameters of the allocation: a wrong group or address name would take another address than asked for.
    "allocate_group": "iptype",
    "allocate_address": "ip",
    "allocate_owner": "owner",
}
PURPOSE_LABELS = {
    "list": gettext_lazy("List addresses"),
    "read": gettext_lazy("Read an address"),
    "allocate": gettext_lazy("Allocate an address"),
    "release": gettext_lazy("Release an address"),
    "groups": gettext_lazy("List IP groups"),
    "whoami": gettext_lazy("Who am I"),
    "actionlist": gettext_lazy("List the panel's functions"),
    "allocate_group": gettext_lazy("Allocation: parameter of the IP group"),
    "allocate_address": gettext_lazy("Allocation: parameter of the address asked for"),
    "allocate_owner": gettext_lazy("Allocation: parameter of the owner (administrator on behalf of a user)"),
}
FUNCTION_NAME_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")  # fullmatch
ALLOCATE_PARAMETERS = ("allocate_group", "allocate_address", "allocate_owner")
# Called to read, by billing and by the read-only probe: never a function that releases or deletes.
READ_PURPOSES = ("list", "read", "groups", "whoami", "actionlist")
# What every call or the allocation sends anyway: a parameter named so would replace it.
RESERVED_PARAMETERS = frozenset({"func", "out", "authinfo", "auth", "sok", "elid", "su", "lang", "family", "domain", "note", "p_num"})


def validate_function_name(name) -> None:
    if not isinstance(name, str) or not FUNCTION_NAME_RE.fullmatch(name):
        raise ValidationError(
            _("%(name)s is not a name the panel uses: lowercase letters, digits, _ and . (e.g. ip.delete).") % {"name": str(name)[:80]}
        )


def validate_function_names(overrides) -> None:
    """Overrides as {"release": "ip.free", ...}: known purposes, names like the panel's."""
    if not isinstance(overrides, dict):
        raise ValidationError(_('Give the overrides as a JSON object, e.g. {"release": "ip.free"}.'))
    unknown = sorted(set(overrides) - set(DEFAULT_FUNCTIONS))
    if unknown:
        message = _("%(names)s: no such purpose; known: %(known)s.")
        raise ValidationError(message % {"names": ", ".join(map(str, unknown)), "known": ", ".join(DEFAULT_FUNCTIONS)})
    for name in overrides.values():
        validate_function_name(name)
    names = function_names(overrides)
    for purpose in READ_PURPOSES:
        if names[purpose] == names["release"] or changes_something(names[purpose]):
            message = _("%(purpose)s: %(name)s releases or deletes, and billing calls this function to read: name a function that reads.")
            raise ValidationError(message % {"purpose": PURPOSE_LABELS[purpose], "name": names[purpose]})
    parameters = [names[purpose] for purpose in ALLOCATE_PARAMETERS]
    reserved = sorted(RESERVED_PARAMETERS.intersection(parameters))
    if reserved:
        raise ValidationError(_("%(names)s: billing sends this parameter anyway, name another one.") % {"names": ", ".join(reserved)})
    if len(set(parameters)) < len(parameters):
        raise ValidationError(_("The allocation's parameters need three different names."))


def function_names(overrides: dict | None) -> dict:
    """The names to call: the defaults with the integration's overrides on top."""
    return DEFAULT_FUNCTIONS | (overrides or {})
