"""Start-up checks: the site and the worker refuse to run with keys that cannot read the stored secrets.

With wrong FIELD_ENCRYPTION_KEYS (or SECRET_KEY) every secret reads as unreadable: panel operations
would fail one by one and clients could not see their passwords. A token encrypted with the keys in
use (`EncryptionKeyCheck`, written after `migrate` and by `reencrypt_secrets`) is read at every
command that runs the system checks (runserver, db_worker, migrate, check...) and by the WSGI
application: one row, one decryption.
"""

from contextlib import nullcontext

from django.apps import apps as global_apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, router, transaction
from django.utils.translation import gettext

from billing.secret_fields import is_unreadable, secret_fields

KEY_CHECK_TEXT = "billing key check"
TOKEN_LABEL = "billing.EncryptionKeyCheck.token"  # noqa: S105 - a name, not a password


def unreadable_with_configured_keys(apps=None, using: str | None = None) -> str | None:
    """The label of a stored secret the configured keys cannot decrypt, or None.

    The token decides; without one (before the first `migrate` wrote it, or when `migrate` found the
    keys wrong and wrote none) the first stored value of each secret field does. None as well when
    there is no table or no database yet: nothing stored can be misread then.
    """
    apps = apps or global_apps
    model = apps.get_model("billing", "EncryptionKeyCheck")
    using = using or router.db_for_read(model)
    # Inside a transaction, a savepoint: a missing table must not break the caller's transaction. Outside,
    # no transaction at all (on SQLite one would take the write lock at every start).
    guard = transaction.atomic(using=using) if connections[using].in_atomic_block else nullcontext()
    try:
        with guard:
            token = model._default_manager.using(using).values_list("token", flat=True).first()
            if token is not None:
                return TOKEN_LABEL if is_unreadable(token) else None
            for secret_model, field in secret_fields(apps):
                value = secret_model._default_manager.using(using).exclude(**{f"{field.name}__isnull": True})
                if is_unreadable(value.values_list(field.name, flat=True).first()):
                    return f"{secret_model._meta.label}.{field.name}"
    except DatabaseError:
        return None
    return None


def keys_error(label: str) -> checks.Error:
    return checks.Error(
        gettext(
            "FIELD_ENCRYPTION_KEYS cannot decrypt the secrets stored in the database (%(label)s): panel passwords "
            "and clients' passwords would be unreadable."
        )
        % {"label": label},
        hint=gettext(
            "The encryption keys are derived from FIELD_ENCRYPTION_KEYS and SECRET_KEY: set both (and "
            "SECRET_KEY_FALLBACKS) back to the values the secrets were encrypted with. To change a key, put the "
            "new one first and keep the old one after it until `manage.py reencrypt_secrets` has run. "
            "`manage.py reencrypt_secrets` names each value the keys cannot read."
        ),
        id="billing.E001",
    )


def encryption_keys_check(app_configs=None, **kwargs):
    """Registered without the deploy tag: every command that starts the site or the worker refuses wrong keys."""
    label = unreadable_with_configured_keys()
    return [keys_error(label)] if label else []


def refuse_unreadable_keys() -> None:
    """For servers that run no system checks (gunicorn loads billing.wsgi): refuse to start."""
    label = unreadable_with_configured_keys()
    if label:
        error = keys_error(label)
        raise ImproperlyConfigured(f"{error.msg} {error.hint}")


def key_check_token_write(*, apps=None, using: str = DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate: store the token when there is none, unless stored secrets show the keys are wrong."""
    apps = apps or global_apps
    try:
        model = apps.get_model("billing", "EncryptionKeyCheck")
    except LookupError:
        return  # migrated back to before the token existed
    if unreadable_with_configured_keys(apps, using) is None and not model._default_manager.using(using).exists():
        model._default_manager.using(using).create(token=KEY_CHECK_TEXT)


def key_check_token_rewrite() -> None:
    """After every secret was re-encrypted with the first key: the token says these keys are the ones in use."""
    from billing.models import EncryptionKeyCheck

    EncryptionKeyCheck.objects.all().delete()
    EncryptionKeyCheck.objects.create(token=KEY_CHECK_TEXT)

