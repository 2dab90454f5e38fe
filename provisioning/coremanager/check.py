"""What a connection check of a panel found, for the admin that saves the panel's settings."""

from dataclasses import dataclass

from django.utils.translation import gettext_noop

from billing.stored_text import StoredText


@dataclass
class CheckResult:
    ok: bool
    message: StoredText
    # What ISPmanager said it is; an IPmanager check leaves them empty. `level` is empty when the panel did not tell it.
    edition: str = ""
    level: str = ""
    # license.info's own words, which the edition was read from ("ISPmanager Business", "ISPmanager Lite 5.290", ...).
    edition_text: str = ""
    warning: bool = False
    # A failure the admin must fix before saving (wrong credentials, wrong level, not a panel),
    # as opposed to a panel that is merely unreachable right now.
    blocking: bool = False


def sentences(first: StoredText, *more: StoredText) -> StoredText:
    """Sentences of a check's report, each translated on its own, in this order."""
    for then in more:
        first = StoredText(gettext_noop("%(first)s %(then)s"), {"first": first, "then": then})
    return first
