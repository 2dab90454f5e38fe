"""Secrets at rest that fail safe: what the configured keys cannot decrypt is never used as a value.

`EncryptedCharField` of django-fernet-encrypted-fields hands back the ciphertext itself when it
cannot decrypt it, so a wrong key would show `gAAAA…` as a password, send it to a panel, and
re-encrypt it on the next save. `SecretField` reads such a value as `UnreadableSecret` instead: it
refuses to be turned into text, and saving it writes the stored ciphertext back unchanged.
"""

from cryptography.fernet import InvalidToken
from encrypted_fields.fields import EncryptedCharField


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS."""


class UnreadableSecret:
    """What a secret that cannot be decrypted reads as. It is never text."""

    __slots__ = ("ciphertext", "label")

    def __init__(self, ciphertext: str, label: str):
        self.ciphertext, self.label = ciphertext, label

    def __str__(self):
        raise SecretUnreadable(
            f"{self.label} cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS (a key is missing or wrong)"
        )

    def __repr__(self):
        return f"<UnreadableSecret {self.label}>"

    def __bool__(self):
        return True

    def __eq__(self, other):
        return isinstance(other, UnreadableSecret) and other.ciphertext == self.ciphertext

    def __hash__(self):
        return hash(self.ciphertext)


def is_unreadable(value) -> bool:
    return isinstance(value, UnreadableSecret)


class SecretField(EncryptedCharField):
    """An encrypted text field whose undecryptable values read as `UnreadableSecret`."""

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        try:
            return self.f.decrypt(value.encode("utf-8")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            return UnreadableSecret(value, f"{self.model._meta.label}.{self.name}")

    def to_python(self, value):
        if isinstance(value, UnreadableSecret):
            return value
        return super().to_python(value)

    def get_prep_value(self, value):
        if isinstance(value, UnreadableSecret):
            return value.ciphertext  # kept as it was: a later key may still read it
        return super().get_prep_value(value)
