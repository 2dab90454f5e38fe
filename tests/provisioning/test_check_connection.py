"""Check connection: what the panel is, who we are to it, and words an admin understands."""

import json
import socket

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import translation

from billing.choices import ProductType
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from provisioning.models import ProcessingModule
from provisioning.services import module_check_connection
from tests.factories import DataCenterFactory, ProcessingModuleFactory

pytestmark = pytest.mark.django_db
RESELLER_REFUSAL = "Integration cannot be set up with Reseller credentials"


@pytest.fixture
def lite():
    with EmulatorServer(ISPmanagerEmulator(edition="lite", admins={"root": "secret"})) as server:
        yield server


def check(url, username="root", password="secret", product_type=ProductType.VHOST):
    module = ProcessingModuleFactory(url=url, username=username, password=password, product_type=product_type)
    result = module_check_connection(module=module)
    module.refresh_from_db()
    return module, result


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_business_administrator_is_accepted_and_the_finding_stored(ispmanager):
    module, result = check(ispmanager.url)

    assert result.ok and not result.warning
    assert (module.edition, module.caller_level, module.check_ok) == ("business", "administrator", True)
    assert result.edition_text == "ISPmanager Business (ispmgr)"
    assert module.check_message == "Connected to ISPmanager Business as administrator root."
    assert module.checked_at is not None


def test_business_reseller_is_refused_for_external_ftp_storage_with_the_documented_reason(ispmanager):
    ispmanager.app.accounts["reseller"] = ("pw", 24)

    module, result = check(ispmanager.url, username="reseller", password="pw", product_type=ProductType.STORAGE)

    assert (result.ok, result.blocking) == (False, True)
    assert RESELLER_REFUSAL in module.check_message
    assert module.caller_level == "reseller"


def test_business_reseller_may_run_shared_hosting(ispmanager):
    ispmanager.app.accounts["reseller"] = ("pw", 24)
    _module, result = check(ispmanager.url, username="reseller", password="pw", product_type=ProductType.VHOST)
    assert result.ok


def test_lite_works_with_a_warning_about_disk_quotas(lite):
    module, result = check(lite.url)

    assert (result.ok, result.warning, module.edition, result.edition_text) == (True, True, "lite", "ISPmanager Lite (ispmgr)")
    assert "disk quotas" in module.check_message
    assert "calls itself" not in module.check_message


def test_a_root_is_accepted_as_an_administrator_and_named_root(lite):
    lite.app.accounts["boss"] = ("boss-pass-1", 30)

    module, result = check(lite.url, username="boss", password="boss-pass-1", product_type=ProductType.STORAGE)

    assert (result.ok, result.blocking, module.caller_level) == (True, False, "root")
    assert str(module.check_message).startswith("Connected to ISPmanager Lite as root boss. Make sure disk quotas are enabled")


def test_a_license_text_of_another_kind_is_no_error_but_lite(ispmanager):
    ispmanager.app.license_text = "Some panel 7"

    module, result = check(ispmanager.url)

    assert (result.ok, result.blocking, module.edition, result.edition_text) == (True, False, "lite", "Some panel 7 (ispmgr)")
    assert "The panel calls itself “Some panel 7 (ispmgr)”, which does not say Business: taken as Lite." in module.check_message


@pytest.mark.parametrize(
    ("case", "expected", "blocking"),
    [
        ("wrong password", "wrong username or password", True),
        ("not ISPmanager", "not the panel's API address", True),
        ("nothing listening", "cannot connect to 127.0.0.1", False),
        ("timeout", "did not answer within", False),
        ("a panel user", "is an ISPmanager user account", True),
    ],
)
def test_failures_are_told_in_plain_words(ispmanager, settings, case, expected, blocking):
    settings.PANEL_CHECK_TIMEOUT = (1, 1)
    url, password, username = ispmanager.url, "secret", "root"
    if case == "wrong password":
        password = "wrong"
    elif case == "not ISPmanager":
        url = ispmanager.url.replace("/ispmgr", "/billmgr")
    elif case == "nothing listening":
        url = f"http://127.0.0.1:{free_port()}/ispmgr"
    elif case == "timeout":
        ispmanager.app.faults.delay = 1.5
    else:
        ispmanager.app.users["client1"] = {"name": "client1", "password": "pw", "active": True, "limits": {}, "owner": "root"}
        username, password = "client1", "pw"

    module, result = check(url, username=username, password=password)

    assert not result.ok
    assert result.blocking is blocking
    assert expected in module.check_message
    assert "secret" not in module.check_message


@pytest.fixture
def tls_panel():
    with EmulatorServer(ISPmanagerEmulator(admins={"root": "secret"}), tls=True) as server:
        yield server


@pytest.mark.parametrize(
    ("verify_tls", "trust_its_ca", "works"),
    [(True, False, False), (True, True, True), (False, False, True)],
    ids=["verify-unknown-ca", "verify-with-its-ca", "no-verification"],
)
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_a_self_signed_panel_is_trusted_by_its_ca_or_with_verification_off(tls_panel, verify_tls, trust_its_ca, works):
    module = ProcessingModuleFactory(
        url=tls_panel.url,
        username="root",
        password="secret",
        verify_tls=verify_tls,
        ca_certificate=tls_panel.certificate if trust_its_ca else "",
    )

    result = module_check_connection(module=module)

    assert result.ok is works
    if not works:
        assert result.blocking
        assert "TLS certificate of 127.0.0.1" in result.message
        assert "give the panel's CA certificate or switch verification off" in result.message


def test_https_to_a_plain_http_panel_says_so(ispmanager):
    module, result = check(ispmanager.url.replace("http://", "https://"))

    assert (result.ok, result.blocking) == (False, True)
    assert "does not speak TLS as expected (is the URL http://" in module.check_message


def test_saving_a_module_with_a_wrong_password_is_refused_and_saves_nothing(admin_client, ispmanager):
    response = admin_client.post(
        reverse("admin:provisioning_processingmodule_add"),
        {
            "product_type": ProductType.STORAGE,
            "kind": "ispmanager5",
            "url": ispmanager.url,
            "username": "root",
            "password": "wrong",
            "verify_tls": "on",
            "data_center": DataCenterFactory().pk,
            "name": "FTP storage",
            "is_enabled": "on",
        },
    )

    assert response.status_code == 200
    assert "Connection check failed: wrong username or password" in response.text
    assert not ProcessingModule.objects.exists()


def test_saving_a_module_whose_panel_is_unreachable_saves_with_the_finding(admin_client):
    response = admin_client.post(
        reverse("admin:provisioning_processingmodule_add"),
        {
            "product_type": ProductType.VHOST,
            "kind": "ispmanager5",
            "url": f"http://127.0.0.1:{free_port()}/ispmgr",
            "username": "root",
            "password": "secret",
            "verify_tls": "on",
            "data_center": DataCenterFactory().pk,
            "name": "Not installed yet",
            "is_enabled": "on",
        },
        follow=True,
    )

    module = ProcessingModule.objects.get()
    assert module.check_ok is False
    assert "cannot connect" in module.check_message
    assert "cannot connect" in response.text


def test_the_check_connection_action_stores_and_lists_the_result(admin_client, ispmanager):
    module = ProcessingModuleFactory(url=ispmanager.url, username="root", password="secret")

    response = admin_client.post(
        reverse("admin:provisioning_processingmodule_changelist"),
        {"action": "check_connection", "_selected_action": [module.pk]},
        follow=True,
    )

    module.refresh_from_db()
    assert module.check_ok is True
    assert response.text.count("Connected to ISPmanager Business as administrator root.") >= 2  # the message and the list


@pytest.mark.django_db(transaction=True)
def test_the_check_on_save_runs_outside_any_database_transaction(admin_client, ispmanager, monkeypatch):
    from django.db import connection

    from provisioning import admin as provisioning_admin

    seen = []

    def spy(**kwargs):
        seen.append(connection.in_atomic_block)
        return module_check_connection(**kwargs)

    monkeypatch.setattr(provisioning_admin, "module_check_connection", spy)
    response = admin_client.post(
        reverse("admin:provisioning_processingmodule_add"),
        {
            "product_type": ProductType.VHOST,
            "kind": "ispmanager5",
            "url": ispmanager.url,
            "username": "root",
            "password": "secret",
            "verify_tls": "on",
            "data_center": DataCenterFactory().pk,
            "name": "Shared 1",
            "is_enabled": "on",
        },
    )

    assert response.status_code == 302
    assert seen == [False]
    assert ProcessingModule.objects.get().check_ok is True


def test_the_check_message_is_stored_as_a_message_and_read_in_the_readers_language(ispmanager):
    module, _result = check(ispmanager.url)

    with connection.cursor() as cursor:
        cursor.execute("SELECT check_message FROM provisioning_processingmodule WHERE id = %s", [module.pk])
        stored = json.loads(cursor.fetchone()[0])
    assert stored == {
        "msgid": "Connected to ISPmanager %(edition)s as %(level)s %(user)s.",
        "params": {"edition": "Business", "level": {"msgid": "administrator", "params": {}}, "user": "root"},
    }
    with translation.override("ru"):
        assert str(module.check_message) == "Подключено к ISPmanager Business как администратор root."
