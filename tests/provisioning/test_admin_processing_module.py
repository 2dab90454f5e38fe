"""The ProcessingModule admin form, driven over HTTP as staff use it."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.urls import reverse

from billing.choices import ProductType
from provisioning.coremanager.client import LEVEL_ADMIN
from provisioning.coremanager.emulator import self_signed_certificate
from provisioning.models import ProcessingModule
from tests.factories import DataCenterFactory, ProcessingModuleFactory, TariffPlanFactory

ADD_URL = reverse("admin:provisioning_processingmodule_add")
PEM = self_signed_certificate()[0]  # a CA the client can load (the panel itself speaks plain HTTP here)


def change_url(module):
    return reverse("admin:provisioning_processingmodule_change", args=[module.pk])


def form_errors(response, field):
    return " ".join(response.context["adminform"].form.errors.get(field, []))


def raw_password(module):
    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM provisioning_processingmodule WHERE id = %s", [module.pk])
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def panel(ispmanager):
    """Saving checks the connection: the panel is an emulator whose administrator is admin / panel-secret-1."""
    ispmanager.app.accounts["admin"] = ("panel-secret-1", LEVEL_ADMIN)
    return ispmanager


def admin_password_is(panel, password):
    panel.app.accounts["admin"] = (password, LEVEL_ADMIN)


@pytest.fixture
def add_data(db, panel):
    return {
        "product_type": ProductType.VHOST,
        "kind": "ispmanager5",
        "url": panel.url,
        "username": "admin",
        "password": "panel-secret-1",
        "verify_tls": "on",
        "ca_certificate": PEM,
        "data_center": DataCenterFactory().pk,
        "name": "Moscow shared 1",
        "department": Group.objects.create(name="Support").pk,
        "ipmanager": "",
        "is_enabled": "on",
        "_save": "Save",
    }


def change_data(module, **overrides):
    data = {
        "product_type": module.product_type,
        "kind": module.kind,
        "url": module.url,
        "username": module.username,
        "password": "",
        "verify_tls": "on",
        "ca_certificate": module.ca_certificate,
        "data_center": module.data_center_id,
        "name": module.name,
        "department": module.department_id or "",
        "ipmanager": module.ipmanager_id or "",
        "is_enabled": "on",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def test_processing_module_add_page_shows_the_documented_sections_and_labels(admin_client):
    response = admin_client.get(ADD_URL)

    assert response.status_code == 200
    html = response.content.decode()
    fieldset_names = [fieldset.name for fieldset in response.context["adminform"]]
    assert "Integration" in fieldset_names
    assert "Internal" in fieldset_names
    for label in ["Product type", "Module", "URL", "Username", "Password", "Data center", "Name", "Department"]:
        assert f">{label}:</label>" in html, label
    assert 'type="password" name="password"' in html


def test_processing_module_with_valid_input_is_saved(admin_client, add_data):
    response = admin_client.post(ADD_URL, add_data)

    assert response.status_code == 302
    module = ProcessingModule.objects.get()
    assert module.name == "Moscow shared 1"
    assert module.product_type == ProductType.VHOST
    assert module.kind == "ispmanager5"
    assert module.url == add_data["url"]
    assert module.username == "admin"
    assert module.password == "panel-secret-1"
    assert module.verify_tls is True
    assert module.ca_certificate.strip() == PEM.strip()
    assert module.data_center_id == add_data["data_center"]
    assert module.department_id == add_data["department"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://panel.example.com/ispmgr", "The URL must start with https://"),
        ("url", "panel.example.com:1500/ispmgr", "The URL must start with https://"),
        ("url", "https:///ispmgr", "The URL must name the panel's host"),
        ("url", "https://admin:pw@panel.example.com:1500/ispmgr", "Do not put a login or password in the URL"),
        ("url", "https://panel.example.com:99999/ispmgr", "Enter a valid URL"),
        ("ca_certificate", "just some text, not a certificate", "Paste the certificate in PEM form"),
        ("password", "", "This field is required."),
        ("url", "https://panel example.com:1500/ispmgr", "is not a valid host name"),
        ("url", "https://panel.example.com:1500/ispmgr?authinfo=root:secret", "without ?… or #…"),
        ("url", "https://panel.example.com:1500/ispmgr#admin", "without ?… or #…"),
    ],
    ids=[
        "ftp-scheme", "no-scheme", "no-host", "credentials-in-url", "port-out-of-range", "ca-not-pem", "no-password", "space-in-host",
        "query-in-url", "fragment-in-url",
    ],
)
def test_processing_module_with_bad_input_is_refused_and_not_saved(admin_client, add_data, field, value, message):
    response = admin_client.post(ADD_URL, {**add_data, field: value})

    assert response.status_code == 200
    assert message in form_errors(response, field)
    assert not ProcessingModule.objects.exists()
    assert "panel-secret-1" not in response.content.decode(), "a typed password is never echoed back"


def test_processing_module_change_with_credentials_in_url_is_refused_and_changes_nothing(admin_client):
    module = ProcessingModuleFactory(name="Kept name", password="stored-secret")

    response = admin_client.post(
        change_url(module),
        change_data(module, url="https://root:pw@evil.example.com/ispmgr", password="new-secret", name="Renamed"),
    )

    assert response.status_code == 200
    assert "Do not put a login or password in the URL" in form_errors(response, "url")
    module.refresh_from_db()
    assert (module.url, module.password, module.name) == ("https://panel.example.com:1500/ispmgr", "stored-secret", "Kept name")


def test_processing_module_change_page_never_renders_the_password_or_its_ciphertext(admin_client):
    module = ProcessingModuleFactory(password="very-secret-panel-pw")

    response = admin_client.get(change_url(module))

    assert response.status_code == 200
    html = response.content.decode()
    assert "very-secret-panel-pw" not in html
    assert raw_password(module) not in html
    assert "Leave blank to keep it" in html


def test_processing_module_saved_with_blank_password_keeps_the_stored_one(admin_client, panel):
    module = ProcessingModuleFactory(url=panel.url, password="keep-me-secret")
    panel.app.accounts["admin2"] = ("keep-me-secret", LEVEL_ADMIN)

    response = admin_client.post(change_url(module), change_data(module, password="", username="admin2"))

    assert response.status_code == 302
    module.refresh_from_db()
    assert module.username == "admin2"
    assert module.password == "keep-me-secret"


def test_processing_module_saved_with_a_new_password_replaces_the_stored_one(admin_client, panel):
    module = ProcessingModuleFactory(url=panel.url, username="admin", password="old-secret")
    admin_password_is(panel, "brand-new-secret")

    response = admin_client.post(change_url(module), change_data(module, password="brand-new-secret"))

    assert response.status_code == 302
    module.refresh_from_db()
    assert module.password == "brand-new-secret"


def test_processing_module_password_column_holds_ciphertext_not_the_secret(admin_client, add_data, panel):
    admin_password_is(panel, "plain-text-secret")
    admin_client.post(ADD_URL, {**add_data, "password": "plain-text-secret"})

    module = ProcessingModule.objects.get()
    stored = raw_password(module)
    assert stored
    assert "plain-text-secret" not in stored
    assert module.password == "plain-text-secret"


def test_processing_module_product_type_cannot_change_under_tariffs_of_the_old_type(admin_client):
    module = ProcessingModuleFactory(product_type=ProductType.VHOST)
    TariffPlanFactory(processing_module=module, product_type=ProductType.VHOST)

    response = admin_client.post(change_url(module), change_data(module, product_type=ProductType.STORAGE))

    assert response.status_code == 200
    assert "tariff" in form_errors(response, "product_type").lower()
    module.refresh_from_db()
    assert module.product_type == ProductType.VHOST
