import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from encrypted_fields.fields import EncryptedFieldMixin

from billing.secret_fields import SecretField
from provisioning.models import ProcessingModule
from tests.factories import ProcessingModuleFactory

pytestmark = pytest.mark.django_db


def _raw(model, pk, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608 - names from the model
        return cursor.fetchone()[0]


def test_every_secret_field_is_encrypted_and_fails_safe():
    fields = [(model, field) for model in apps.get_models() for field in model._meta.concrete_fields if not model._meta.proxy]
    encrypted = {f"{model._meta.label}.{field.name}": field for model, field in fields if isinstance(field, EncryptedFieldMixin)}
    # SecretField reads what the keys cannot decrypt as unreadable, never as the ciphertext; reencrypt_secrets covers them all.
    assert all(isinstance(field, SecretField) for field in encrypted.values())
    assert set(encrypted) == {
        "billing.Service.panel_password",
        "provisioning.ProcessingModule.password",
        "ipam_sync.IPmanagerIntegration.password",
        "ipam_sync.IPmanagerIntegration.admin_password",
        "provisioning.Operation.secret",
        "billing.EncryptionKeyCheck.token",
        "billing.WebhookEndpoint.secret",
    }


def test_the_stored_value_is_not_the_secret_and_reads_back_as_it():
    module = ProcessingModuleFactory(password="panel-secret-42")

    stored = _raw(ProcessingModule, module.pk, "password")
    assert "panel-secret-42" not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert ProcessingModule.objects.get(pk=module.pk).password == "panel-secret-42"


def test_a_new_key_is_rolled_in_by_reencrypt_secrets(settings):
    settings.SALT_KEY = ["old-key"]
    module = ProcessingModuleFactory(password="panel-secret-42")
    before = _raw(ProcessingModule, module.pk, "password")

    settings.SALT_KEY = ["new-key", "old-key"]
    call_command("reencrypt_secrets")
    after = _raw(ProcessingModule, module.pk, "password")

    assert after != before
    settings.SALT_KEY = ["new-key"]  # the old key is gone now
    assert ProcessingModule.objects.get(pk=module.pk).password == "panel-secret-42"


def test_reencrypt_secrets_stops_without_changes_when_a_secret_cannot_be_decrypted(settings):
    settings.SALT_KEY = ["lost-key"]
    module = ProcessingModuleFactory(password="panel-secret-42")
    before = _raw(ProcessingModule, module.pk, "password")

    settings.SALT_KEY = ["other-key"]
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("reencrypt_secrets")

    assert _raw(ProcessingModule, module.pk, "password") == before


def test_history_never_copies_a_password():
    module = ProcessingModuleFactory(password="panel-secret-42")
    module.url = "https://other.example.com:1500/ispmgr"
    module.save()
    historical_fields = {field.name for field in module.history.model._meta.fields}
    assert "password" not in historical_fields
    assert module.history.count() == 2
