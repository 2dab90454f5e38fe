"""Secrets fail safe: what the configured keys cannot decrypt is never shown, sent or rewritten, and wrong keys stop every start."""

import io
import os
import runpy
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.urls import reverse
from django_tasks import TaskResultStatus, task_backends

from billing.checks import encryption_keys_check, key_check_token_write
from billing.choices import ProductType, ServiceStatus
from billing.models import EncryptionKeyCheck, Service
from billing.services import service_mark_paid
from ipam_sync.models import IPmanagerIntegration
from provisioning.choices import OperationStatus
from provisioning.coremanager.emulator import EmulatorServer
from provisioning.ispmanager.emulator import ISPmanagerEmulator
from provisioning.models import Operation, ProcessingModule
from tests.factories import (
    ClientFactory,
    IPmanagerIntegrationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
WRONG_KEY = "a-key-that-encrypted-nothing-here"
PASSWORD = "correct-horse-battery"  # what tests.factories.UserFactory sets
PANEL_PASSWORD = "Pa9-panel-secret-Zq"
PAID_AT = "2025-01-01T00:00Z"


def raw(model, pk, column):
    """The stored column itself, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])  # noqa: S608 - names from the model
        return cursor.fetchone()[0]


@pytest.fixture
def wrong_keys(settings):
    """Switch FIELD_ENCRYPTION_KEYS to a key that encrypted none of what is stored."""

    def switch():
        settings.SALT_KEY = [WRONG_KEY]

    return switch


class FormValues(HTMLParser):
    """What a browser would submit from a page's form with the given id, as it was rendered."""

    def __init__(self, html: str, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.values = form_id, False, {}
        self._select = self._textarea = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or (not attrs.get("name") and tag != "option"):
            return
        if tag == "input" and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.values.setdefault(attrs["name"], []).append(attrs.get("value") or "")
        elif tag == "select":
            self._select = attrs["name"]
            self.values.setdefault(self._select, [])
        elif tag == "option" and self._select and "selected" in attrs:
            self.values[self._select].append(attrs.get("value") or "")
        elif tag == "textarea":
            self._textarea = attrs["name"]
            self.values[self._textarea] = [""]

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea][-1] += data.removeprefix("\n") if not self.values[self._textarea][-1] else data


def resubmit(admin_client, url, form_id, **changes):
    """Open an admin change page and save it as it is (with `changes`), as staff pressing Save would."""
    page = admin_client.get(url)
    assert page.status_code == 200
    data = FormValues(page.content.decode(), form_id).values
    data.update({name: [value] for name, value in changes.items()})
    data["_save"] = ["Save"]
    return admin_client.post(url, data)


class RecordingISPmanager(ISPmanagerEmulator):
    """The emulator, keeping every request as it arrived (secrets included), to show what was sent."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.received: list[str] = []

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        self.received.append(unquote_plus(f"{environ.get('QUERY_STRING', '')}&{body.decode()}"))
        return super().__call__(environ, start_response)


@pytest.fixture
def recording_panel():
    app = RecordingISPmanager(admins={"root": "secret"})
    app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    with EmulatorServer(app) as server:
        yield server


def run_queued_tasks():
    backend = task_backends["default"]
    for result in [result for result in backend.results if result.status == TaskResultStatus.READY]:
        backend.results.remove(result)
        result.task.call(*result.args, **result.kwargs)


@pytest.fixture
def paid_service(recording_panel, django_capture_on_commit_callbacks):
    """A paid hosting service whose account is queued for the worker, all encrypted with the keys in use."""
    task_backends["default"].clear()
    module = ProcessingModuleFactory(url=recording_panel.url, username="root", password="secret", product_type=ProductType.VHOST)
    tariff = TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST, account_template="Site hosting")
    customer, user = ClientFactory(), UserFactory()
    customer.users.add(user)
    service = ServiceFactory(client=customer, tariff=tariff, ordered_by=user)
    with django_capture_on_commit_callbacks(execute=True):
        service_mark_paid(service=service)
    yield service
    task_backends["default"].clear()


# The start-up check


def test_migrate_stored_a_key_check_token_that_the_configured_keys_read():
    (token,) = EncryptionKeyCheck.objects.all()

    assert raw(EncryptionKeyCheck, token.pk, "token").startswith("gAAAAA")
    assert encryption_keys_check() == []


def test_wrong_field_encryption_keys_fail_the_check_naming_the_variables(wrong_keys):
    wrong_keys()

    (error,) = encryption_keys_check()

    assert error.id == "billing.E001"
    assert error.is_serious()
    assert "FIELD_ENCRYPTION_KEYS cannot decrypt the secrets stored in the database" in error.msg
    assert "SECRET_KEY" in error.hint
    assert "reencrypt_secrets" in error.hint
    with pytest.raises(SystemCheckError, match="FIELD_ENCRYPTION_KEYS"):
        call_command("check")


def test_another_secret_key_fails_the_check_too(settings):
    settings.SECRET_KEY = "another-secret-key-that-is-long-enough-0123456789abcdef"

    assert [error.id for error in encryption_keys_check()] == ["billing.E001"]


def test_the_old_key_kept_after_a_new_one_passes_the_check(settings):
    settings.SALT_KEY = ["a-new-key", *settings.SALT_KEY]

    assert encryption_keys_check() == []


@pytest.mark.django_db(transaction=True)  # as at start-up: no surrounding transaction, so no savepoint
def test_the_check_costs_one_query(django_assert_num_queries, wrong_keys):
    with django_assert_num_queries(1):
        assert encryption_keys_check() == []
    wrong_keys()
    with django_assert_num_queries(1):
        assert encryption_keys_check()


def test_without_a_token_stored_secrets_decide_and_wrong_keys_get_no_token(settings, wrong_keys):
    # An installation upgraded to the token: migrate must not bless whatever keys it runs with.
    EncryptionKeyCheck.objects.all().delete()
    ProcessingModuleFactory(password="panel-secret-42")
    right = settings.SALT_KEY
    wrong_keys()

    (error,) = encryption_keys_check()
    assert "provisioning.ProcessingModule.password" in error.msg
    key_check_token_write()
    assert not EncryptionKeyCheck.objects.exists()

    settings.SALT_KEY = right
    key_check_token_write()
    assert EncryptionKeyCheck.objects.count() == 1
    assert encryption_keys_check() == []


def _manage(*args, database, keys, code=None):
    # As production starts: none of what tests/settings.py puts in the environment (the dummy task backend).
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "DJANGO_SETTINGS_MODULE", "TASKS_BACKEND"}}
    env.update(DJANGO_SETTINGS_MODULE="billing.settings", DATABASE_URL=f"sqlite:///{database}", FIELD_ENCRYPTION_KEYS=keys)
    env.update(SECRET_KEY="start-up-test-secret-key-that-is-long-enough-0123456789", ENV_FILE=os.devnull)
    command = [sys.executable, "-c", code] if code else [sys.executable, "manage.py", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603


@pytest.mark.django_db(False)
def test_a_new_database_migrates_and_then_wrong_keys_stop_the_worker_and_migrate(tmp_path):
    database = tmp_path / "billing.sqlite3"
    right, wrong = secrets.token_urlsafe(16), WRONG_KEY

    migrated = _manage("migrate", "--noinput", database=database, keys=right)
    assert migrated.returncode == 0, migrated.stderr  # the check runs on an empty database and does not stop it

    for started in (
        _manage("db_worker", "--batch", "--no-startup-delay", database=database, keys=wrong),
        _manage("migrate", "--noinput", database=database, keys=wrong),
    ):
        assert started.returncode != 0
        assert "FIELD_ENCRYPTION_KEYS cannot decrypt the secrets stored in the database" in started.stderr

    # With nothing stored but the token, reencrypt_secrets (which the check does not stop) adopts the new key.
    adopted = _manage("reencrypt_secrets", database=database, keys=wrong)
    assert adopted.returncode == 0, adopted.stderr
    assert _manage("check", database=database, keys=wrong).returncode == 0


def test_the_wsgi_application_that_gunicorn_loads_refuses_wrong_keys(wrong_keys):
    runpy.run_module("billing.wsgi")  # the keys in use: it loads
    wrong_keys()

    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS cannot decrypt the secrets stored in the database"):
        runpy.run_module("billing.wsgi")


# Never shown


def test_the_client_page_says_an_unreadable_panel_password_cannot_be_read(client, wrong_keys):
    user, customer = UserFactory(), ClientFactory()
    customer.users.add(user)
    service = ServiceFactory(client=customer, status=ServiceStatus.ACTIVE, panel_username="user77", panel_password=PANEL_PASSWORD)
    ciphertext = raw(Service, service.pk, "panel_password")
    wrong_keys()
    client.force_login(user)
    url = reverse("service_detail", args=[service.pk])

    for response in (client.get(url), client.post(url, {"password": PASSWORD}), client.get(url + "?show=1")):
        html = response.content.decode()
        assert response.status_code == 200
        assert "The password cannot be read at the moment. Please contact support." in html
        assert 'id="panel-password"' not in html
        assert ciphertext not in html
        assert "gAAAA" not in html


# Never sent


def test_the_worker_refuses_an_unreadable_module_password_and_the_panel_hears_nothing(paid_service, recording_panel, wrong_keys):
    wrong_keys()

    run_queued_tasks()

    operation = Operation.objects.get(service=paid_service)
    assert operation.status == OperationStatus.FAILED
    error = str(operation.last_error)
    assert "provisioning.ProcessingModule.password cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS" in error
    assert "nothing was sent" in error
    assert recording_panel.app.received == []
    assert "gAAAA" not in error


def test_the_worker_never_sends_an_unreadable_client_password_to_the_panel(paid_service, recording_panel, wrong_keys):
    operation = Operation.objects.get(service=paid_service)
    ciphertext = raw(Operation, operation.pk, "secret")
    wrong_keys()
    module = ProcessingModule.objects.get()
    module.password = "secret"  # entered again with the new key: the module works, the queued password does not
    module.save()

    run_queued_tasks()

    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert "provisioning.Operation.secret cannot be decrypted" in str(operation.last_error)
    assert recording_panel.app.received  # the module's own calls went out
    assert not any(ciphertext in request or "gAAAA" in request for request in recording_panel.app.received)
    assert not any("user.add" in request for request in recording_panel.app.received)
    assert recording_panel.app.users == {}


# Never rewritten


def test_saving_a_row_rewrites_only_the_secret_given_a_new_value(wrong_keys):
    module = ProcessingModuleFactory(password="panel-secret-42")
    stored = raw(ProcessingModule, module.pk, "password")

    module = ProcessingModule.objects.get(pk=module.pk)
    module.name = "Renamed"
    module.save()
    assert raw(ProcessingModule, module.pk, "password") == stored

    module.password = "panel-secret-43"
    module.save()
    assert raw(ProcessingModule, module.pk, "password") != stored
    assert ProcessingModule.objects.get(pk=module.pk).password == "panel-secret-43"

    wrong_keys()
    stored = raw(ProcessingModule, module.pk, "password")
    module = ProcessingModule.objects.get(pk=module.pk)
    module.name = "Renamed again"
    module.save()
    assert raw(ProcessingModule, module.pk, "password") == stored
    assert module.history.count() == 4  # simple-history wrote its rows; none holds the password


def test_saving_a_module_in_the_admin_without_its_password_keeps_the_exact_ciphertext(admin_client, ispmanager):
    module = ProcessingModuleFactory(url=ispmanager.url, username="root", password="secret")
    stored = raw(ProcessingModule, module.pk, "password")

    response = resubmit(admin_client, reverse("admin:provisioning_processingmodule_change", args=[module.pk]), "processingmodule_form")

    assert response.status_code == 302
    assert raw(ProcessingModule, module.pk, "password") == stored
    assert module.history.count() == 2


def test_a_module_with_an_unreadable_password_shows_in_the_admin_and_saves_only_with_a_new_one(admin_client, recording_panel, wrong_keys):
    module = ProcessingModuleFactory(url=recording_panel.url, username="root", password="secret")
    stored = raw(ProcessingModule, module.pk, "password")
    wrong_keys()
    url = reverse("admin:provisioning_processingmodule_change", args=[module.pk])

    page = admin_client.get(url)
    assert page.status_code == 200
    assert "the configured encryption keys cannot decrypt it: enter it again" in page.content.decode()
    assert stored not in page.content.decode()

    refused = resubmit(admin_client, url, "processingmodule_form", name="Renamed")
    assert refused.status_code == 200
    assert "FIELD_ENCRYPTION_KEYS" in " ".join(refused.context["adminform"].form.non_field_errors())
    assert raw(ProcessingModule, module.pk, "password") == stored
    assert ProcessingModule.objects.get(pk=module.pk).name == module.name
    assert recording_panel.app.received == []

    saved = resubmit(admin_client, url, "processingmodule_form", password="secret")
    assert saved.status_code == 302
    assert ProcessingModule.objects.get(pk=module.pk).password == "secret"


@pytest.mark.parametrize("readable", [True, False], ids=["readable", "unreadable"])
def test_saving_a_service_in_the_admin_keeps_its_panel_password_ciphertext(admin_client, wrong_keys, readable):
    service = ServiceFactory(status=ServiceStatus.ACTIVE, panel_username="user7", panel_password=PANEL_PASSWORD, paid_at=PAID_AT)
    stored = raw(Service, service.pk, "panel_password")
    if not readable:
        wrong_keys()

    response = resubmit(admin_client, reverse("admin:billing_service_change", args=[service.pk]), "service_form")

    assert response.status_code == 302
    assert raw(Service, service.pk, "panel_password") == stored


def test_an_integration_with_unreadable_passwords_shows_in_the_admin_and_unchanged_keeps_them(admin_client, ipmanager, wrong_keys):
    integration = IPmanagerIntegrationFactory(url=ipmanager.url, password="secret", admin_username="admin", admin_password="secret")
    stored = [raw(IPmanagerIntegration, integration.pk, column) for column in ("password", "admin_password")]
    wrong_keys()
    url = reverse("admin:ipam_sync_ipmanagerintegration_change", args=[integration.pk])

    page = admin_client.get(url)
    assert page.status_code == 200
    assert not any(ciphertext in page.content.decode() for ciphertext in stored)
    assert page.content.decode().count("the configured encryption keys cannot decrypt it") == 2

    refused = resubmit(admin_client, url, "ipmanagerintegration_form", name="Renamed")
    assert refused.status_code == 200
    assert "FIELD_ENCRYPTION_KEYS" in " ".join(refused.context["adminform"].form.non_field_errors())
    assert [raw(IPmanagerIntegration, integration.pk, column) for column in ("password", "admin_password")] == stored
    assert ipmanager.app.calls == []


# reencrypt_secrets


def test_reencrypt_secrets_names_every_unreadable_value_and_changes_nothing(wrong_keys):
    modules = [ProcessingModuleFactory(password=f"panel-secret-{n}") for n in range(2)]
    before = [raw(ProcessingModule, module.pk, "password") for module in modules]
    token = raw(EncryptionKeyCheck, EncryptionKeyCheck.objects.get().pk, "token")
    wrong_keys()

    with pytest.raises(CommandError) as refused:
        call_command("reencrypt_secrets")

    assert "nothing was changed" in str(refused.value)
    for module in modules:
        assert f"provisioning.ProcessingModule #{module.pk} password" in str(refused.value)
    assert [raw(ProcessingModule, module.pk, "password") for module in modules] == before
    assert raw(EncryptionKeyCheck, EncryptionKeyCheck.objects.get().pk, "token") == token


def test_after_reencrypt_secrets_the_old_key_can_go_and_the_check_passes(settings):
    module = ProcessingModuleFactory(password="panel-secret-42")
    old = list(settings.SALT_KEY)
    token = raw(EncryptionKeyCheck, EncryptionKeyCheck.objects.get().pk, "token")

    settings.SALT_KEY = ["the-new-key", *old]
    call_command("reencrypt_secrets")
    settings.SALT_KEY = ["the-new-key"]

    assert encryption_keys_check() == []
    assert raw(EncryptionKeyCheck, EncryptionKeyCheck.objects.get().pk, "token") != token
    assert ProcessingModule.objects.get(pk=module.pk).password == "panel-secret-42"
    assert django_settings.SALT_KEY == ["the-new-key"]
