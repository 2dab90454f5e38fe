"""Secrets at rest that fail safe: what the configured keys cannot decrypt is never used as a value.

`EncryptedCharField` of django-fernet-encrypted-fields hands back the ciphertext itself when it
cannot decrypt it, so a wrong key would show `gAAAA…` as a password, send it to a panel, and
re-encrypt it on the next save. `SecretField` reads such a value as `UnreadableSecret` instead: it
refuses to be turned into text, and saving it writes the stored ciphertext back unchanged. A value
it can read comes back as `DecryptedSecret`, which also remembers its ciphertext: saving a row
rewrites only the secrets that were given a new value (key rotation is `reencrypt_secrets`' job).
"""

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from django.apps import apps as django_apps
from django.conf import settings
from encrypted_fields.fields import EncryptedCharField

# Every field derives its keys as django-fernet-encrypted-fields does, so that stored values stay readable.
KDF_ITERATIONS = 100_000


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


class DecryptedSecret(str):
    """A secret as read from the database: its text, plus the ciphertext that saving it writes back."""

    ciphertext: str

    def __new__(cls, text: str, ciphertext: str):
        secret = super().__new__(cls, text)
        secret.ciphertext = ciphertext
        return secret

    def __reduce__(self):
        return DecryptedSecret, (str(self), self.ciphertext)


def is_unreadable(value) -> bool:
    return isinstance(value, UnreadableSecret)


@lru_cache(maxsize=8)
def _fernet(secret_keys: tuple[str, ...], salt_keys: tuple[str, ...]) -> MultiFernet:
    # PBKDF2 costs tens of milliseconds per key: derived once per process for all the fields, not once per field.
    keys = []
    for secret_key in secret_keys:
        for salt_key in salt_keys:
            kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt_key.encode(), iterations=KDF_ITERATIONS)
            keys.append(Fernet(base64.urlsafe_b64encode(kdf.derive(secret_key.encode()))))
    return MultiFernet(keys)


def configured_fernet() -> MultiFernet:
    """The keys derived from SECRET_KEY (+ SECRET_KEY_FALLBACKS) and FIELD_ENCRYPTION_KEYS; the first one encrypts."""
    salt_keys = settings.SALT_KEY if isinstance(settings.SALT_KEY, list) else [settings.SALT_KEY]
    return _fernet((settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])), tuple(salt_keys))


class SecretField(EncryptedCharField):
    """An encrypted text field whose undecryptable values read as `UnreadableSecret`."""

    @property
    def f(self) -> MultiFernet:
        return configured_fernet()

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return DecryptedSecret(self.f.decrypt(value.encode("utf-8")).decode("utf-8"), value)
        except (InvalidToken, UnicodeEncodeError, UnicodeDecodeError):
            return UnreadableSecret(value, f"{self.model._meta.label}.{self.name}")

    def to_python(self, value):
        if isinstance(value, (UnreadableSecret, DecryptedSecret)):
            return value
        return super().to_python(value)

    def run_validators(self, value):
        if isinstance(value, UnreadableSecret):
            return  # kept as it is stored: it has no text to validate
        super().run_validators(value)

    def get_prep_value(self, value):
        if isinstance(value, (UnreadableSecret, DecryptedSecret)):
            return value.ciphertext  # unchanged, and an unreadable one kept for a key that may still read it
        return super().get_prep_value(value)


def secret_fields(apps=django_apps):
    """(model, field) for every SecretField of the (possibly historical) `apps`."""
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, SecretField):
                yield model, field
