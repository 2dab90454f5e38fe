"""The IPmanagerIntegration admin form, driven over HTTP as staff use it."""

import pytest
from django.db import connection
from django.urls import reverse

from ipam_sync.models import IPmanagerIntegration
from tests.factories import IPmanagerIntegrationFactory

ADD_URL = reverse("admin:ipam_sync_ipmanagerintegration_add")


def change_url(integration):
    return reverse("admin:ipam_sync_ipmanagerintegration_change", args=[integration.pk])


def form_errors(response, field):
    return " ".join(response.context["adminform"].form.errors.get(field, []))


def raw_secrets(integration):
    with connection.cursor() as cursor:
        cursor.execute("SELECT password, admin_password FROM ipam_sync_ipmanagerintegration WHERE id = %s", [integration.pk])
        return cursor.fetchone()


def add_data(**overrides):
    data = {
        "name": "IPmanager Moscow",
        "url": "https://ip.example.com:1500/ipmgr",
        "username": "billing",
        "password": "ipmgr-user-secret",
        "admin_username": "",
        "admin_password": "",
        "ignored_ip_types": "",
        "_save": "Save",
    }
    data.update(overrides)
    return data


def change_data(integration, **overrides):
    data = {
        "name": integration.name,
        "url": integration.url,
        "username": integration.username,
        "password": "",
        "admin_username": integration.admin_username,
        "admin_password": "",
        "ignored_ip_types": ", ".join(integration.ignored_ip_types),
        "_save": "Save",
    }
    if integration.ignore_ip_types:
        data["ignore_ip_types"] = "on"
    data.update(overrides)
    return data


@pytest.fixture
def with_admin(db):
    return IPmanagerIntegrationFactory(password="user-secret-123", admin_username="root", admin_password="admin-secret-456")


def test_ipmanager_add_page_shows_the_documented_sections_and_labels(admin_client):
    response = admin_client.get(ADD_URL)

    assert response.status_code == 200
    html = response.content.decode()
    fieldset_names = [fieldset.name for fieldset in response.context["adminform"]]
    assert fieldset_names[:2] == ["Connection", "Synchronization of IP addresses"]
    for label in ["Name:", "URL:", "Username:", "Password:", "Administrator login:", "Administrator password:"]:
        assert f">{label}</label>" in html, label
    assert ">Ignore types of IP addresses</label>" in html


def test_ipmanager_dummy_integration_with_only_user_credentials_is_saved(admin_client):
    response = admin_client.post(ADD_URL, add_data())

    assert response.status_code == 302
    integration = IPmanagerIntegration.objects.get()
    assert (integration.name, integration.url, integration.username) == ("IPmanager Moscow", "https://ip.example.com:1500/ipmgr", "billing")
    assert integration.password == "ipmgr-user-secret"
    assert not integration.admin_username
    assert not integration.admin_password
    assert integration.ignore_ip_types is False
    assert integration.ignored_ip_types == []


def test_ipmanager_ignored_ip_types_typed_as_one_line_are_saved_as_a_list(admin_client):
    response = admin_client.post(ADD_URL, add_data(ignore_ip_types="on", ignored_ip_types="public, reserved"))

    assert response.status_code == 302
    integration = IPmanagerIntegration.objects.get()
    assert integration.ignore_ip_types is True
    assert integration.ignored_ip_types == ["public", "reserved"]
    change_page = admin_client.get(change_url(integration)).content.decode()
    assert 'value="public, reserved"' in change_page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"ignore_ip_types": "on", "ignored_ip_types": "public, bad type!"}, "ignored_ip_types", "is not an IP group name"),
        ({"ignore_ip_types": "on", "ignored_ip_types": "алиас"}, "ignored_ip_types", "is not an IP group name"),
        ({"ignore_ip_types": "on", "ignored_ip_types": "public, reserved, public"}, "ignored_ip_types", "IP group public is listed twice"),
        ({"ignore_ip_types": "on", "ignored_ip_types": ""}, "ignored_ip_types", "List the IP types to ignore, or uncheck the box"),
        ({"admin_username": "root", "admin_password": ""}, "admin_password", "Enter the administrator's password too"),
        ({"url": "ftp://ip.example.com/ipmgr"}, "url", "The URL must start with https://"),
        ({"url": "https://billing:pw@ip.example.com/ipmgr"}, "url", "Do not put a login or password in the URL"),
    ],
    ids=[
        "bad-name",
        "cyrillic-name",
        "duplicate-name",
        "checked-but-empty",
        "admin-login-without-password",
        "ftp-url",
        "credentials-in-url",
    ],
)
def test_ipmanager_with_bad_input_is_refused_and_not_saved(admin_client, overrides, field, message):
    response = admin_client.post(ADD_URL, add_data(**overrides))

    assert response.status_code == 200
    assert message in form_errors(response, field)
    assert not IPmanagerIntegration.objects.exists()


def test_ipmanager_change_with_bad_ip_type_is_refused_and_changes_nothing(admin_client, with_admin):
    response = admin_client.post(
        change_url(with_admin), change_data(with_admin, ignore_ip_types="on", ignored_ip_types="ok, not ok!", password="other")
    )

    assert response.status_code == 200
    assert "is not an IP group name" in form_errors(response, "ignored_ip_types")
    with_admin.refresh_from_db()
    assert (with_admin.ignore_ip_types, with_admin.ignored_ip_types, with_admin.password) == (False, [], "user-secret-123")


def test_ipmanager_change_page_never_renders_either_password_or_their_ciphertext(admin_client, with_admin):
    response = admin_client.get(change_url(with_admin))

    assert response.status_code == 200
    html = response.content.decode()
    for secret in ["user-secret-123", "admin-secret-456", *raw_secrets(with_admin)]:
        assert secret not in html
    assert 'type="password" name="password"' in html
    assert 'type="password" name="admin_password"' in html


def test_ipmanager_secret_columns_hold_ciphertext_not_the_secrets(with_admin):
    stored_password, stored_admin_password = raw_secrets(with_admin)

    assert stored_password and "user-secret-123" not in stored_password
    assert stored_admin_password and "admin-secret-456" not in stored_admin_password


def test_ipmanager_saved_with_blank_passwords_keeps_both_stored_ones(admin_client, with_admin):
    response = admin_client.post(change_url(with_admin), change_data(with_admin, username="billing2"))

    assert response.status_code == 302
    with_admin.refresh_from_db()
    assert with_admin.username == "billing2"
    assert with_admin.password == "user-secret-123"
    assert with_admin.admin_password == "admin-secret-456"


def test_ipmanager_saved_with_new_passwords_replaces_both(admin_client, with_admin):
    response = admin_client.post(change_url(with_admin), change_data(with_admin, password="new-user-pw", admin_password="new-admin-pw"))

    assert response.status_code == 302
    with_admin.refresh_from_db()
    assert (with_admin.password, with_admin.admin_password) == ("new-user-pw", "new-admin-pw")


def test_ipmanager_clearing_the_administrator_login_forgets_the_administrator_password(admin_client, with_admin):
    response = admin_client.post(change_url(with_admin), change_data(with_admin, admin_username=""))

    assert response.status_code == 302
    with_admin.refresh_from_db()
    assert with_admin.admin_username == ""
    assert not with_admin.admin_password
    assert not raw_secrets(with_admin)[1]
    assert with_admin.password == "user-secret-123"


# Advanced: the names of the functions billing calls.

DEFAULT_NAMES = {
    "list": "ip",
    "read": "ip.edit",
    "allocate": "ip.edit",
    "release": "ip.delete",
    "groups": "iptype",
    "whoami": "whoami",
    "actionlist": "actionlist",
    "allocate_group": "iptype",
    "allocate_address": "ip",
    "allocate_owner": "owner",
}


def test_ipmanager_advanced_section_is_collapsed_with_one_input_per_name_showing_the_default(admin_client):
    response = admin_client.get(ADD_URL)

    advanced = next(fieldset for fieldset in response.context["adminform"] if fieldset.name == "Advanced")
    assert "collapse" in advanced.classes
    html = response.content.decode()
    for purpose, default in DEFAULT_NAMES.items():
        assert f'name="function_{purpose}" placeholder="{default}"' in html, purpose
    assert 'name="function_names"' not in html


def test_ipmanager_only_names_that_differ_from_the_default_are_saved_and_shown_again(admin_client):
    response = admin_client.post(ADD_URL, add_data(function_release="ip.free", function_list="ip", function_allocate_owner=" user "))

    assert response.status_code == 302
    integration = IPmanagerIntegration.objects.get()
    assert integration.function_names == {"release": "ip.free", "allocate_owner": "user"}
    html = admin_client.get(change_url(integration)).content.decode()
    assert 'name="function_release" value="ip.free"' in html
    assert 'name="function_list" placeholder="ip"' in html


def test_ipmanager_emptying_an_override_goes_back_to_the_default(admin_client, db):
    integration = IPmanagerIntegrationFactory(password="user-secret-123", function_names={"release": "ip.free", "groups": "ip.group"})

    response = admin_client.post(change_url(integration), change_data(integration, function_release="", function_groups="ip.group"))

    assert response.status_code == 302
    integration.refresh_from_db()
    assert integration.function_names == {"groups": "ip.group"}


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"function_release": "IP.DELETE"}, "function_release", "is not a name the panel uses"),
        ({"function_release": "ip delete"}, "function_release", "is not a name the panel uses"),
        ({"function_release": "ip.delete&func=user.delete"}, "function_release", "is not a name the panel uses"),
        ({"function_list": "ип"}, "function_list", "is not a name the panel uses"),
        ({"function_list": "1ip"}, "function_list", "is not a name the panel uses"),
        ({"function_list": "ip\x00"}, "function_list", "Null characters are not allowed"),
        ({"function_whoami": "w" * 5000}, "function_whoami", "at most 64 characters"),
        ({"function_allocate_group": "domain"}, "__all__", "domain: billing sends this parameter anyway"),
        ({"function_allocate_address": "func"}, "__all__", "func: billing sends this parameter anyway"),
        ({"function_allocate_group": "ip"}, "__all__", "The allocation's parameters need three different names"),
    ],
    ids=[
        "upper-case",
        "space",
        "injected-parameter",
        "cyrillic",
        "digit-first",
        "null-byte",
        "huge",
        "reserved",
        "func",
        "same-as-address",
    ],
)
def test_ipmanager_bad_function_names_are_refused_and_nothing_is_saved(admin_client, overrides, field, message):
    response = admin_client.post(ADD_URL, add_data(**overrides))

    assert response.status_code == 200
    assert message in form_errors(response, field)
    assert not IPmanagerIntegration.objects.exists()


def test_ipmanager_the_check_on_save_calls_the_panel_by_the_names_entered(admin_client, ipmanager):
    ipmanager.app.rename = {"iptype": "ip.group"}

    response = admin_client.post(ADD_URL, add_data(url=ipmanager.url, password="secret", function_groups="ip.group"), follow=True)

    integration = IPmanagerIntegration.objects.get()
    assert (integration.check_ok, str(integration.check_message)) == (True, "User billing may take addresses in the groups: alias.")
    assert integration.function_names == {"groups": "ip.group"}
    assert ("ip.group", {}) in ipmanager.app.calls
    assert response.status_code == 200
