"""Rows written in the writer's language before texts were stored as messages read in the reader's after migrating."""

import pytest
from django.utils import translation

from tests.billing.conftest import migrate
from tests.factories import ClientFactory, ServiceFactory

BEFORE = [("billing", "0006_secret_and_stored_text_fields")]
AFTER = [("billing", "0007_legacy_texts_to_messages")]


@pytest.mark.django_db(transaction=True)
def test_references_and_reasons_billing_wrote_become_messages_and_the_rest_stays_verbatim(latest_schema_after):
    client = ClientFactory()
    service = ServiceFactory(client=client)
    old = migrate(BEFORE)
    LedgerEntry, ServiceStatusChange = old.get_model("billing", "LedgerEntry"), old.get_model("billing", "ServiceStatusChange")
    written = {
        "Услуга #12, первый платёж": ("Service #12, first payment", "Услуга #12, первый платёж"),
        "Payment PAB12CD34EF": ("Payment PAB12CD34EF", "Платёж PAB12CD34EF"),
        "Bonus for the review (typed by staff)": ("Bonus for the review (typed by staff)", "Bonus for the review (typed by staff)"),
    }
    for number, text in enumerate(written, start=1):
        LedgerEntry.objects.create(client_id=client.pk, kind="topup", amount=number, reference=text)
    reasons = {
        "оплачена": ("paid", "оплачена"),
        "Account user7 created.": ("Account user7 created.", "Аккаунт user7 создан."),
        "wrong username or password (auth)": ("wrong username or password (auth)", "wrong username or password (auth)"),
    }
    for text in reasons:
        ServiceStatusChange.objects.create(service_id=service.pk, from_status="ordered", to_status="processing", reason=text)

    new = migrate(AFTER)

    for model, field, expected in (("LedgerEntry", "reference", written), ("ServiceStatusChange", "reason", reasons)):
        shown = []
        for row in new.get_model("billing", model).objects.all():
            with translation.override("en"):
                english = str(getattr(row, field))
            with translation.override("ru"):
                russian = str(getattr(row, field))
            shown.append((english, russian))
        assert sorted(shown) == sorted(expected.values())
