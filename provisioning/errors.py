"""What can go wrong when billing talks to a panel: retry later, or stop and tell staff."""


class ProvisioningError(Exception):
    """A failed panel action; `type` and `object` are the panel's own error fields when it answered."""

    def __init__(self, message: str, *, type: str = "", object: str = ""):
        super().__init__(message)
        self.message, self.type, self.object = message, type, object


class TransientError(ProvisioningError):
    """Worth another attempt: the panel was unreachable, slow, or failed on its side."""


class PermanentError(ProvisioningError):
    """Another attempt would fail the same way until someone changes something."""
