"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS (key rotation)."""

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from encrypted_fields.fields import EncryptedFieldMixin


def encrypted_fields():
    for model in apps.get_models():
        if model._meta.proxy:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedFieldMixin):
                yield model, field


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the current key; run after prepending a new key to FIELD_ENCRYPTION_KEYS."

    @transaction.atomic
    def handle(self, *args, **options):
        total = 0
        for model, field in encrypted_fields():
            # Read the ciphertext itself: the field would silently hand back a value it cannot decrypt.
            rows = model.objects.exclude(**{f"{field.name}__isnull": True}).annotate(_raw=Cast(field.name, TextField()))
            for pk, raw in rows.values_list("pk", "_raw"):
                try:
                    secret = field.f.decrypt(raw.encode()).decode()
                except InvalidToken:
                    raise CommandError(
                        f"{model._meta.label} #{pk}: {field.name} cannot be decrypted with any configured key; nothing was changed."
                    ) from None
                model.objects.filter(pk=pk).update(**{field.name: secret})
                total += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} secrets."))
