"""Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS (key rotation)."""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils.translation import gettext, ngettext

from billing.checks import key_check_token_rewrite
from billing.models import EncryptionKeyCheck
from billing.secret_fields import configured_fernet, secret_fields

# How many unreadable values the refusal names; the count says how many more there are.
NAMED_AT_MOST = 20


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the current key; run after prepending a new key to FIELD_ENCRYPTION_KEYS."

    # The system check refuses keys that cannot read the key-check token. This command checks more
    # (every value) and changes nothing unless all of them read, so it runs anyway: it names what
    # cannot be read, and it is how the token is renewed once every real secret reads.
    requires_system_checks = []

    @transaction.atomic
    def handle(self, *args, **options):
        fernet = configured_fernet()
        readable, unreadable = [], []
        for model, field in secret_fields():
            if model is EncryptionKeyCheck:
                continue  # not a secret: rewritten below to say which keys are in use
            # The ciphertext itself, not the field's reading of it.
            rows = model.objects.exclude(**{f"{field.name}__isnull": True}).annotate(_raw=Cast(field.name, TextField()))
            for pk, raw in rows.values_list("pk", "_raw").order_by("pk"):
                try:
                    readable.append((model, field, pk, fernet.decrypt(raw.encode()).decode()))
                except (InvalidToken, UnicodeError):
                    unreadable.append(f"{model._meta.label} #{pk} {field.name}")
        if unreadable:
            named, more = ", ".join(unreadable[:NAMED_AT_MOST]), len(unreadable) - NAMED_AT_MOST
            if more > 0:
                named = ngettext("%(values)s and %(count)d more", "%(values)s and %(count)d more", more) % {"values": named, "count": more}
            message = gettext("These secrets cannot be decrypted with any configured key, so nothing was changed: %(values)s.")
            raise CommandError(message % {"values": named})
        for model, field, pk, secret in readable:
            model.objects.filter(pk=pk).update(**{field.name: secret})
        key_check_token_rewrite()
        done = ngettext("Re-encrypted %(count)d secret.", "Re-encrypted %(count)d secrets.", len(readable)) % {"count": len(readable)}
        self.stdout.write(self.style.SUCCESS(done))
