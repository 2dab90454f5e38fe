"""Rows written before texts were stored as messages hold them in the writer's language.

The references and reasons billing itself wrote ("Service #12, first payment", "Услуга #12, первый
платёж", "paid", "оплачена", ...) become the message they were made from, so they read in the
reader's language like new rows. Anything else (what staff typed, a panel's own words) stays verbatim.
"""

import re

from django.db import migrations

from billing.stored_text import StoredText

# (msgid, its English and Russian renderings as regular expressions with named parameters)
LEDGER_REFERENCES = [
    ("Service #%(id)d, first payment", [r"Service #(?P<id>\d+), first payment", r"Услуга #(?P<id>\d+), первый платёж"]),
    ("Payment %(reference)s", [r"Payment (?P<reference>P[0-9A-F]+)", r"Платёж (?P<reference>P[0-9A-F]+)"]),
    ("Demo balance", [r"Demo balance"]),
]
STATUS_REASONS = [
    ("paid", [r"paid", r"оплачена"]),
    ("cancelled before payment", [r"cancelled before payment", r"отменена до оплаты"]),
    ("asked by the client", [r"asked by the client", r"по запросу клиента"]),
    ("Account %(login)s created.", [r"Account (?P<login>\S+) created\.", r"Аккаунт (?P<login>\S+) создан\."]),
    ("retried by staff", [r"retried by staff", r"повторный запуск сотрудником"]),
    ("the panel reports this state", [r"the panel reports this state", r"такое состояние сообщает панель"]),
]


def as_message(text: str, patterns) -> StoredText | None:
    for msgid, renderings in patterns:
        for rendering in renderings:
            if match := re.fullmatch(rendering, text):
                params = {key: int(value) if key == "id" else value for key, value in match.groupdict().items()}
                return StoredText(msgid, params)
    return None


def convert(model, field: str, patterns) -> None:
    for row in model.objects.exclude(**{field: ""}).only(field).iterator():
        text = getattr(row, field)
        if text.msgid:
            continue
        if message := as_message(text.verbatim, patterns):
            model.objects.filter(pk=row.pk).update(**{field: message})


def forwards(apps, schema_editor):
    convert(apps.get_model("billing", "LedgerEntry"), "reference", LEDGER_REFERENCES)
    convert(apps.get_model("billing", "ServiceStatusChange"), "reason", STATUS_REASONS)


class Migration(migrations.Migration):
    dependencies = [("billing", "0006_secret_and_stored_text_fields")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
