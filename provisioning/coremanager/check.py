"""What a connection check of a panel found, for the admin that saves the panel's settings."""

from dataclasses import dataclass

from billing.stored_text import StoredText


@dataclass
class CheckResult:
    ok: bool
    message: StoredText
    # What ISPmanager said it is; an IPmanager check leaves them empty.
    edition: str = ""
    level: str = ""
    warning: bool = False
    # A failure the admin must fix before saving (wrong credentials, wrong level, not a panel),
    # as opposed to a panel that is merely unreachable right now.
    blocking: bool = False
