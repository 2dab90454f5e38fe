"""What can go wrong when billing talks to a panel: retry later, or stop and tell staff.

Callers catch a class, never compare the panel's error strings: which class a reply is gets decided
in one place, `provisioning.coremanager.client.reply_error` (and the transport errors next to it).
"""

from billing.stored_text import StoredText


class ProvisioningError(Exception):
    """A failed panel action.

    `message` is a StoredText: our own words in the reader's language, a panel's own text verbatim.
    `object` is the panel's `$object` when it answered with an error (the field or element concerned).
    """

    def __init__(self, message: StoredText | str, *, object: str = ""):
        self.message, self.object = StoredText.of(message), object
        super().__init__(self.message)

    def __str__(self):
        return str(self.message)


class TransientError(ProvisioningError):
    """Worth another attempt: the panel was unreachable, slow, or failed on its side."""


class Unreachable(TransientError):
    """No connection could be made (refused, reset, no route, name not resolved)."""


class Timeout(TransientError):
    """The panel did not answer within the read timeout."""


class CutOff(TransientError):
    """The reply stopped halfway: the panel may have done the work."""


class PanelFailure(TransientError):
    """The panel answered HTTP 5xx or an error of its own that is not about our request."""


class PermanentError(ProvisioningError):
    """Another attempt would fail the same way until someone changes something."""


class AuthFailed(PermanentError):
    """Wrong username or password."""


class AccessDenied(PermanentError):
    """The caller's level may not do this."""


class NotFound(PermanentError):
    """No such element (user, template, address)."""


class AlreadyExists(PermanentError):
    """The name or address is taken."""


class InvalidValue(PermanentError):
    """The panel refused a field's value; `object` names the field."""


class LimitReached(PermanentError):
    """A quota or a pool is used up."""


class NoSuchFunction(PermanentError):
    """The panel answers but has no such function (e.g. ISPmanager asked for IPmanager's address pools)."""


class NotAPanel(PermanentError):
    """Something answers at the URL, but not the panel's API: another site, a refusing proxy, a wrong path."""


class TLSFailed(PermanentError):
    """The TLS handshake failed: an untrusted certificate, or TLS spoken to a plain HTTP port."""


class CredentialsUnreadable(PermanentError):
    """A password is stored but the configured FIELD_ENCRYPTION_KEYS cannot decrypt it: nothing is sent to the panel."""


class ForeignAccount(PermanentError):
    """The account at a service's login is not the service's (another full name or owner, or gone): never act on it for the service."""


class StateUnknown(PermanentError):
    """The panel does not tell an account's state (its list row has no `active`, or neither on nor off): nothing is changed on a guess."""


class NotReadOnly(PermanentError):
    """A read-only caller (the probe) was given a function that changes something: refused before anything was sent."""
