"""What sync_ips and the connection check write for staff is stored as messages and their parameters.

So each reader gets it in the language of the page (tests/test_one_language.py reads the Russian admin),
while what a panel said itself stays as the panel said it.
"""

import json

import pytest
from django.db import connection
from django.urls import reverse

from ipam_sync.models import IPmanagerIntegration, SyncChange, SyncRun
from ipam_sync.services import integration_check_connection, note_for
from ipam_sync.sync import sync_ips_run
from tests.factories import IPmanagerIntegrationFactory, ServiceFactory


def stored(model, column: str, pk: int):
    """What the database holds (not what the field reads back), decoded when it is a stored message."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608 - names from the model
        raw = cursor.fetchone()[0]
    return json.loads(raw) if raw.startswith("{") else raw


@pytest.fixture
def integration(ipmanager, db):
    return IPmanagerIntegrationFactory(name="IPmanager Moscow", url=ipmanager.url, username="billing", password="secret")


@pytest.fixture
def synced(ipmanager, integration):
    """One real run: one address released, one foreign address skipped, one marked allocated."""
    ipmanager.app.take("133.31.223.5", owner="billing", note=note_for(999))
    ipmanager.app.take("133.31.223.7", owner="billing", note="manual")
    integration.assignments.create(service=ServiceFactory(), address="133.31.223.9")
    return sync_ips_run(integration=integration, max_release=50)


def test_a_runs_summary_and_its_reasons_are_stored_as_messages_with_their_numbers(synced):
    assert stored(SyncRun, "message", synced.pk) == {
        "msgid": "Released %(released)d, marked allocated %(allocated)d, skipped %(skipped)d, failed %(failed)d.",
        "params": {"released": 1, "allocated": 1, "skipped": 1, "failed": 0},
    }
    reasons = {change.address: stored(SyncChange, "reason", change.pk) for change in synced.changes.all()}
    assert reasons == {
        "133.31.223.5": {"msgid": "used in IPmanager, held by no service", "params": {}},
        "133.31.223.7": {
            "msgid": "not taken by this billing (note: %(note)s): released only with administrator credentials and --release-foreign",
            "params": {"note": "manual"},  # the note as it is in IPmanager
        },
        "133.31.223.9": {"msgid": "held by a live service in billing", "params": {}},
    }


def test_a_dry_run_and_a_refused_run_say_their_numbers_in_stored_messages(ipmanager, integration):
    for n in (5, 6, 7):
        ipmanager.app.take(f"133.31.223.{n}", owner="billing", note=note_for(900 + n))

    dry = sync_ips_run(integration=integration, dry_run=True, max_release=50)
    refused = sync_ips_run(integration=integration, max_release=2)

    assert stored(SyncRun, "message", dry.pk) == {
        "msgid": "Dry run: %(release)d to release, %(allocate)d to mark allocated.",
        "params": {"release": 3, "allocate": 0},
    }
    assert stored(SyncRun, "message", refused.pk)["params"] == {"count": 3, "cap": 2}
    assert str(refused.message).startswith("Addresses to release: 3, more than the cap of 2: nothing was changed.")
    assert {stored(SyncChange, "reason", pk)["msgid"] for pk in refused.changes.values_list("pk", flat=True)} == {
        "refused: above the release cap"
    }


def test_the_integration_list_shows_the_last_runs_text_not_how_it_is_stored(admin_client, synced):
    html = admin_client.get(reverse("admin:ipam_sync_ipmanagerintegration_changelist")).content.decode()

    assert "Released 1, marked allocated 1, skipped 1, failed 0." in html
    assert "msgid" not in html


def test_a_check_stores_each_sentence_as_a_message_and_the_admin_shows_them_as_one_text(admin_client, integration):
    integration.admin_username, integration.admin_password = "admin", "secret"
    integration.save()

    integration_check_connection(integration=integration)

    check = stored(IPmanagerIntegration, "check_message", integration.pk)
    assert check["msgid"] == "%(first)s %(then)s"
    assert check["params"]["first"] == {
        "msgid": "User %(user)s may take addresses in the groups: %(groups)s.",
        "params": {"user": "billing", "groups": "alias"},
    }
    assert check["params"]["then"] == {"msgid": "Synchronization runs as administrator %(user)s.", "params": {"user": "admin"}}
    page = admin_client.get(reverse("admin:ipam_sync_ipmanagerintegration_change", args=[integration.pk])).content.decode()
    assert "User billing may take addresses in the groups: alias. Synchronization runs as administrator admin." in page
    assert "msgid" not in page


def test_what_the_panel_said_is_kept_in_its_own_words(ipmanager, integration):
    integration.admin_username, integration.admin_password = "admin", "wrong"
    integration.save()

    integration_check_connection(integration=integration)

    check = stored(IPmanagerIntegration, "check_message", integration.pk)
    login = check["params"]["then"]
    assert login["msgid"] == "Administrator login: %(error)s"
    # The panel's own answer is inside, word for word, whatever billing says around it.
    assert '"Invalid username or password"' in json.dumps(login["params"]["error"])
