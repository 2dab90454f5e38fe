"""Access and abuse: login limits behind a proxy, password spraying, the password prompts, private pages, the test gateway."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.core.checks import run_checks
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client as Browser
from django.test import RequestFactory
from django.urls import reverse

from billing.choices import ServiceStatus
from billing.client_ip import client_ip
from billing.username_template import validate_username_template
from billing.validators import validate_domain, validate_ip_type_names
from tests.factories import ServiceFactory, TariffPlanFactory, UserFactory
from tests.panel_protocol import caller, error_of

PASSWORD = "correct-horse-battery"  # what tests.factories.UserFactory sets
PANEL_PASSWORD = "panel-pass-7731"
PROXY = "10.0.0.2"
CLIENT_A, CLIENT_B, CLIENT_C = "203.0.113.10", "203.0.113.20", "198.51.100.30"
LIMIT = 5  # LOGIN_FAILURE_LIMIT's default, what the tests below count up to
_, panel_doc = caller(("root", "secret"))


@pytest.fixture(autouse=True)
def limits(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8
    settings.TRUSTED_PROXY_COUNT, settings.TRUSTED_PROXIES = 0, []


def login(browser, username, password, *, remote=PROXY, forwarded=None):
    headers = {"REMOTE_ADDR": remote} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
    return browser.post(reverse("login"), {"username": username, "password": password}, **headers)


def logged_in_as(browser, username):
    return browser.session.get("_auth_user_id") == str(UserFactory(username=username).pk)


# Where a request comes from


def request_from(remote, forwarded=None):
    headers = {"REMOTE_ADDR": remote} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
    return RequestFactory().get("/", **headers)


def test_without_trusted_proxies_the_forwarded_header_is_ignored(settings):
    assert client_ip(request_from(PROXY, CLIENT_A)) == PROXY


@pytest.mark.parametrize("config", [{"TRUSTED_PROXY_COUNT": 1}, {"TRUSTED_PROXIES": [PROXY]}, {"TRUSTED_PROXIES": ["10.0.0.0/24"]}])
def test_behind_a_trusted_proxy_the_address_it_forwarded_is_the_client(settings, config):
    for name, value in config.items():
        setattr(settings, name, value)

    assert client_ip(request_from(PROXY, CLIENT_A)) == CLIENT_A
    # What the client wrote into the header itself stays to the left of what the proxy appended.
    assert client_ip(request_from(PROXY, f"{CLIENT_B}, {CLIENT_A}")) == CLIENT_A
    assert client_ip(request_from(PROXY, f"not-an-address, {CLIENT_A}")) == CLIENT_A


def test_a_request_that_did_not_come_through_the_named_proxy_is_its_own_address(settings):
    settings.TRUSTED_PROXIES = [PROXY]

    assert client_ip(request_from(CLIENT_C, CLIENT_A)) == CLIENT_C
    assert client_ip(request_from(CLIENT_C)) == CLIENT_C


def test_a_proxy_that_forwarded_no_address_leaves_the_proxy_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert client_ip(request_from(PROXY)) == PROXY


# Login limits behind the proxy


def test_behind_the_proxy_one_clients_wrong_passwords_do_not_lock_out_another(client, settings, db):
    settings.TRUSTED_PROXIES = [PROXY]
    UserFactory(username="ann@example.com")
    attacker = [login(client, "ann@example.com", f"guess-{i}", forwarded=CLIENT_A) for i in range(LIMIT)]
    assert [r.status_code for r in attacker] == [200] * (LIMIT - 1) + [429]
    assert login(client, "ann@example.com", PASSWORD, forwarded=CLIENT_A).status_code == 429

    ann = Browser()
    response = login(ann, "ann@example.com", PASSWORD, forwarded=CLIENT_B)

    assert response.status_code == 302
    assert logged_in_as(ann, "ann@example.com")


def test_without_the_proxy_setting_a_spoofed_forwarded_header_does_not_dodge_the_lockout(client, db):
    UserFactory(username="ann@example.com")
    responses = [login(client, "ann@example.com", f"guess-{i}", forwarded=f"203.0.113.{i}") for i in range(LIMIT)]

    assert [r.status_code for r in responses] == [200] * (LIMIT - 1) + [429]
    assert login(client, "ann@example.com", PASSWORD, forwarded="203.0.113.99").status_code == 429
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_for_many_logins_from_one_address_lock_that_address(client, settings, db):
    settings.TRUSTED_PROXIES = [PROXY]
    UserFactory(username="ann@example.com")
    statuses = [login(client, f"victim{i}@example.com", "Summer2025!", forwarded=CLIENT_A).status_code for i in range(8)]

    assert statuses == [200] * 7 + [429]
    # Now no login passes from that address, not even a right password; other addresses are not affected.
    assert login(Browser(), "ann@example.com", PASSWORD, forwarded=CLIENT_A).status_code == 429
    assert login(Browser(), "ann@example.com", PASSWORD, forwarded=CLIENT_B).status_code == 302


def test_a_sprayer_logging_in_to_its_own_account_does_not_reset_its_address_count(client, settings, db):
    settings.TRUSTED_PROXIES = [PROXY]
    UserFactory(username="mallory@example.com")
    for i in range(7):
        assert login(Browser(), f"victim{i}@example.com", "Summer2025!", forwarded=CLIENT_A).status_code == 200

    assert login(Browser(), "mallory@example.com", PASSWORD, forwarded=CLIENT_A).status_code == 302

    assert login(Browser(), "victim7@example.com", "Summer2025!", forwarded=CLIENT_A).status_code == 429


def test_the_lockout_page_says_for_how_long_and_is_not_stored(client, settings, db):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    UserFactory(username="ann@example.com")
    for i in range(LIMIT):
        response = login(client, "ann@example.com", f"guess-{i}")

    assert response.status_code == 429
    assert "blocked for 15 minutes" in response.content.decode()
    assert response["Retry-After"] == "900"
    assert "no-store" in response["Cache-Control"]


def reset_password(browser, email, new_password):
    browser.post(reverse("password_reset"), {"email": email})
    link = re.search(r"http://testserver(/accounts/reset/[\w-]+/[\w-]+/)", mail.outbox[-1].body).group(1)
    form = browser.get(link, follow=True)
    return browser.post(form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password})


def test_a_password_reset_lifts_the_lockout_of_that_login(client, db):
    UserFactory(username="ann@example.com")
    UserFactory(username="bob@example.com")
    for i in range(LIMIT):
        login(client, "ann@example.com", f"guess-{i}")
        login(client, "bob@example.com", f"guess-{i}")
    assert login(client, "ann@example.com", PASSWORD).status_code == 429

    done = reset_password(Browser(), "ann@example.com", "a-brand-new-passphrase")

    assert done["Location"] == reverse("password_reset_complete")
    assert login(client, "ann@example.com", "a-brand-new-passphrase").status_code == 302
    # Only that login: another one stays locked.
    assert login(Browser(), "bob@example.com", PASSWORD).status_code == 429


# The password prompts of a signed-in client


@pytest.fixture
def active_service(customer):
    tariff = TariffPlanFactory(name="Start")
    return ServiceFactory(
        client=customer, tariff=tariff, status=ServiceStatus.ACTIVE, panel_username="user77", panel_password=PANEL_PASSWORD
    )


def show_password(browser, service, password):
    return browser.post(reverse("service_detail", args=[service.pk]), {"password": password}, REMOTE_ADDR=PROXY)


def test_show_password_guesses_lock_like_wrong_logins(logged_in, active_service):
    responses = [show_password(logged_in, active_service, f"guess-{i}") for i in range(LIMIT)]

    assert [r.status_code for r in responses] == [200] * (LIMIT - 1) + [429]
    locked = show_password(logged_in, active_service, PASSWORD)
    assert locked.status_code == 429
    assert PANEL_PASSWORD not in locked.content.decode()
    assert PANEL_PASSWORD not in logged_in.get(reverse("service_detail", args=[active_service.pk]) + "?show=1").content.decode()
    # The same counter as the login page: that login is locked there too.
    assert login(Browser(), "ann@example.com", PASSWORD).status_code == 429


def test_wrong_logins_and_show_password_guesses_add_up(client, user, active_service):
    for i in range(LIMIT - 2):
        assert login(client, "ann@example.com", f"guess-{i}").status_code == 200
    client.force_login(user)

    assert show_password(client, active_service, "guess-a").status_code == 200
    assert show_password(client, active_service, "guess-b").status_code == 429


def test_the_right_password_at_show_password_clears_the_count(logged_in, active_service):
    for i in range(LIMIT - 1):
        show_password(logged_in, active_service, f"guess-{i}")

    assert PANEL_PASSWORD in show_password(logged_in, active_service, PASSWORD).content.decode()
    assert show_password(logged_in, active_service, "guess-again").status_code == 200


def test_changing_the_password_counts_wrong_old_passwords_like_logins(logged_in, user):
    url = reverse("password_change")
    data = {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"}
    responses = [logged_in.post(url, {"old_password": f"guess-{i}", **data}, REMOTE_ADDR=PROXY) for i in range(LIMIT)]

    assert [r.status_code for r in responses] == [200] * (LIMIT - 1) + [429]
    assert logged_in.post(url, {"old_password": PASSWORD, **data}, REMOTE_ADDR=PROXY).status_code == 429
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # What axes keeps of the failures has no password in it.
    kept = "".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "guess-" not in kept
    assert "a-brand-new-passphrase" not in kept


# Pages that must not be kept by a browser or a proxy


@pytest.mark.parametrize("path", ["/account/", "/account/balance/", "/account/orders/", "/ru/account/"])
def test_client_area_pages_send_no_store(logged_in, customer, path):
    response = logged_in.get(path)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("path", ["/accounts/login/", "/ru/accounts/password_reset/"])
def test_login_and_password_pages_send_no_store(client, db, path):
    response = client.get(path)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_page_that_shows_a_panel_password_sends_no_store(logged_in, active_service):
    response = show_password(logged_in, active_service, PASSWORD)

    assert PANEL_PASSWORD in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def test_api_answers_send_no_store(logged_in, customer):
    response = logged_in.get("/api/v1/me")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]


def test_the_public_shop_window_may_be_cached(client, db):
    assert "no-store" not in client.get(reverse("shop")).get("Cache-Control", "")


# The test payment gateway in production


def check_ids(**options):
    return {message.id for message in run_checks(include_deployment_checks=True, **options)}


def test_check_deploy_fails_when_the_test_gateway_is_on_without_debug(settings, db):
    settings.DEBUG, settings.PAYMENT_GATEWAYS, settings.ALLOW_TEST_GATEWAY = False, ["manual", "test"], False

    with pytest.raises(SystemCheckError, match=r"billing\.E101"):
        call_command("check", deploy=True)


@pytest.mark.parametrize(
    ("debug", "gateways", "allowed"), [(False, ["manual"], False), (True, ["manual", "test"], False), (False, ["manual", "test"], True)]
)
def test_check_deploy_accepts_the_test_gateway_only_with_debug_or_explicit_permission(settings, db, debug, gateways, allowed):
    settings.DEBUG, settings.PAYMENT_GATEWAYS, settings.ALLOW_TEST_GATEWAY = debug, gateways, allowed

    assert "billing.E101" not in check_ids()


@pytest.mark.parametrize(("name", "value"), [("TRUSTED_PROXIES", ["10.0.0.1", "proxy.local"]), ("TRUSTED_PROXY_COUNT", -1)])
def test_a_mistyped_proxy_setting_stops_every_command_not_every_login(client, settings, db, name, value):
    setattr(settings, name, value)

    with pytest.raises(SystemCheckError, match=r"billing\.E102"):
        call_command("check")
    # Under gunicorn, which runs no checks, logins go on, limited by the connecting address.
    UserFactory(username="ann@example.com")
    assert client_ip(request_from(PROXY, CLIENT_A)) == PROXY
    assert login(client, "ann@example.com", PASSWORD, forwarded=CLIENT_A).status_code == 302


# Patterns that guard input match the whole value


@pytest.mark.parametrize("template", ["user\n@ID@", "user@ID@\n", "user@ID@\r", "user\t@ID@"])
def test_a_username_template_with_a_control_character_is_refused(template):
    with pytest.raises(ValidationError) as refused:
        validate_username_template(template)

    assert any("cannot be part of a login" in message for message in refused.value.messages)


@pytest.mark.parametrize("domain", ["example.com\n", "example.com\r\n", "exa\nmple.com"])
def test_a_domain_with_a_line_break_is_refused(domain):
    with pytest.raises(ValidationError, match="is not a domain name"):
        validate_domain(domain)


def test_an_ip_group_name_with_a_trailing_newline_is_refused():
    with pytest.raises(ValidationError, match="is not an IP group name"):
        validate_ip_type_names(["public", "alias\n"])


@pytest.mark.parametrize("login", ["alice\n", "ali\nce"])
def test_the_panel_emulator_refuses_a_login_with_a_newline_as_ispmanager_does(ispmanager, login):
    reply = panel_doc(ispmanager, "user.add.finish", sok="ok", name=login, passwd="pw-1", confirm="pw-1")

    assert error_of(reply) == ("value", "name")
    assert "id" in panel_doc(ispmanager, "user.add.finish", sok="ok", name="alice", passwd="pw-1", confirm="pw-1")
