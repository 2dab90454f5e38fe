"""Open control panel: a POST makes a one-time key in ISPmanager and sends the browser there with it.

Against the emulator over HTTP: the address billing answers with must log a browser in once, as the
service's own panel user; nothing else may reach the panel, and the key must end up nowhere in billing.
"""

import io
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.cache import caches
from django.core.management import call_command
from django.test import Client as BrowserClient
from django.urls import reverse

from billing.choices import PanelAction, ServiceStatus, SuspendReason
from billing.services import service_action_request, service_mark_paid
from tests.factories import ClientFactory, UserFactory

NOT_ANSWERING = "The control panel did not answer; try again in a minute."


@pytest.fixture(autouse=True)
def fresh_turns(transactional_db):
    """Each test starts with every person's turns free (the shared cache outlives a transactional test's rows)."""
    caches["shared"].clear()
    yield
    caches["shared"].clear()


@pytest.fixture
def active_service(make_service, panel, tasks):
    service = make_service()
    service_mark_paid(service=service)
    tasks.run_all()
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE and service.panel_username
    return service


@pytest.fixture
def owner(client, active_service):
    """The test client logged in as the user who ordered the service."""
    client.force_login(active_service.ordered_by)
    return client


def open_url(service) -> str:
    return reverse("service_panel_login", args=[service.pk])


def admin_open_url(service) -> str:
    return reverse("admin:billing_service_panel_login", args=[service.pk])


def key_requests(panel) -> list[dict]:
    return [params for func, params in panel.app.calls if func == "session.newkey"]


def browser_lands(url: str) -> str:
    """What a browser that follows `url` sees: the panel's page."""
    return requests.get(url, timeout=5).text


def messages_after(response, client) -> str:
    """The page billing sent the person back to, with its messages."""
    assert response.status_code == 302
    return client.get(response["Location"]).content.decode()


def test_the_owner_is_sent_to_the_panel_logged_in_as_its_account_once(owner, active_service, panel):
    response = owner.post(open_url(active_service))

    assert response.status_code == 302
    location = response["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == panel.url
    query = parse_qs(parts.query)
    assert query["func"] == ["auth"] and query["username"] == [active_service.panel_username] and query["checkcookie"] == ["no"]
    assert len(query["key"][0]) >= 16
    assert key_requests(panel) == [{"username": active_service.panel_username}]
    assert f"Logged in as {active_service.panel_username}" in browser_lands(location)
    # One-time: the same address, replayed, logs nobody in.
    assert "Login failed" in browser_lands(location)


def test_each_press_makes_a_new_key(owner, active_service):
    first, second = (urlsplit(owner.post(open_url(active_service))["Location"]).query for _ in range(2))
    assert parse_qs(first)["key"] != parse_qs(second)["key"]


def test_the_service_page_offers_a_post_button_and_no_key(owner, active_service, panel):
    page = owner.get(reverse("service_detail", args=[active_service.pk])).content.decode()

    assert f'<form method="post" action="{open_url(active_service)}"' in page
    assert "Open control panel" in page
    assert key_requests(panel) == []  # showing the page asks the panel for nothing


def test_a_get_is_refused_and_makes_no_key(owner, active_service, panel):
    response = owner.get(open_url(active_service))

    assert response.status_code == 405
    assert key_requests(panel) == []


def test_a_post_without_the_csrf_token_is_refused(active_service, panel):
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(active_service.ordered_by)

    assert browser.post(open_url(active_service)).status_code == 403
    assert key_requests(panel) == []


def test_a_visitor_is_sent_to_log_in(client, active_service, panel):
    response = client.post(open_url(active_service))

    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert key_requests(panel) == []


def test_another_clients_service_is_a_404(client, active_service, panel):
    stranger = UserFactory()
    ClientFactory().users.add(stranger)
    client.force_login(stranger)

    assert client.post(open_url(active_service)).status_code == 404
    assert client.post(reverse("service_panel_login", args=[active_service.pk + 1000])).status_code == 404
    assert key_requests(panel) == []


def refused(owner, service, panel, message):
    response = owner.post(open_url(service))
    assert response["Location"] == reverse("service_detail", args=[service.pk])
    page = messages_after(response, owner)
    assert message in page
    assert "Open control panel" not in page
    assert key_requests(panel) == []


def test_a_suspended_service_is_refused_with_a_message(owner, active_service, panel, tasks):
    service_action_request(service=active_service, action=PanelAction.SUSPEND, by=None, suspend_reason=SuspendReason.STAFF)
    tasks.run_all()
    active_service.refresh_from_db()
    assert active_service.status == ServiceStatus.SUSPENDED

    refused(owner, active_service, panel, "The control panel can be opened only while the service is active.")


def test_a_deleted_service_is_refused_with_a_message(owner, active_service, panel, tasks):
    service_action_request(service=active_service, action=PanelAction.CLOSE, by=None)
    tasks.run_all()
    active_service.refresh_from_db()
    assert active_service.status == ServiceStatus.DELETED

    refused(owner, active_service, panel, "The control panel can be opened only while the service is active.")


def test_a_service_without_a_panel_login_is_refused_with_a_message(owner, active_service, panel):
    active_service.panel_username = ""
    active_service.save(update_fields=["panel_username"])

    refused(owner, active_service, panel, "This service has no control panel account yet.")


def test_a_disabled_module_is_refused_with_a_message(owner, active_service, panel, module):
    module.is_enabled = False
    module.save(update_fields=["is_enabled"])

    refused(owner, active_service, panel, "The control panel is not available at the moment. Please try again later.")


def test_a_panel_that_is_down_gives_a_clear_message(owner, active_service, panel):
    panel.app.faults.down = True
    history = active_service.status_changes.count()

    response = owner.post(open_url(active_service))

    assert response["Location"] == reverse("service_detail", args=[active_service.pk])
    assert NOT_ANSWERING in messages_after(response, owner)
    assert active_service.status_changes.count() == history  # nothing was opened


def test_a_panel_failing_with_http_503_gives_the_same_message(owner, active_service, panel):
    panel.app.faults.fail_next(func="session.newkey")

    assert NOT_ANSWERING in messages_after(owner.post(open_url(active_service)), owner)


def test_an_account_missing_in_the_panel_asks_the_client_to_contact_support(owner, active_service, panel):
    del panel.app.users[active_service.panel_username]

    page = messages_after(owner.post(open_url(active_service)), owner)

    assert "The control panel refused to open your account. Please contact support." in page


def test_the_history_says_who_opened_the_panel(owner, active_service):
    owner.post(open_url(active_service))

    change = active_service.status_changes.order_by("pk").last()
    assert (change.from_status, change.to_status) == (ServiceStatus.ACTIVE, ServiceStatus.ACTIVE)
    assert change.changed_by == active_service.ordered_by
    assert str(change.reason) == f"Control panel opened as {active_service.panel_username}."


def test_the_key_is_neither_logged_nor_stored(owner, active_service, caplog):
    caplog.set_level(logging.DEBUG)

    location = owner.post(open_url(active_service))["Location"]

    key = parse_qs(urlsplit(location).query)["key"][0]
    assert "session.newkey" in caplog.text  # the call itself was logged, without its key
    assert key not in caplog.text
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    assert active_service.panel_username in dump.getvalue()
    assert key not in dump.getvalue()


def test_a_person_opens_panels_a_limited_number_of_times_a_minute(owner, active_service, panel, settings):
    settings.PANEL_LOGIN_RATE = (2, 60)

    assert [owner.post(open_url(active_service)).status_code for _ in range(2)] == [302, 302]
    response = owner.post(open_url(active_service))

    assert response["Location"] == reverse("service_detail", args=[active_service.pk])
    assert "The control panel was opened too many times in a row: try again in a minute." in messages_after(response, owner)
    assert len(key_requests(panel)) == 2


def test_failed_tries_count_too_so_a_failing_panel_is_not_hammered(owner, active_service, panel, settings):
    settings.PANEL_LOGIN_RATE = (2, 60)
    panel.app.faults.fail_next(2, func="session.newkey")

    for _ in range(2):
        assert NOT_ANSWERING in messages_after(owner.post(open_url(active_service)), owner)
    response = owner.post(open_url(active_service))

    assert "The control panel was opened too many times in a row: try again in a minute." in messages_after(response, owner)
    assert key_requests(panel) == []  # the third press never reached the panel, which answers again by now


def test_staff_open_the_panel_as_the_clients_account(admin_client, staff_user, active_service, panel):
    change_page = admin_client.get(reverse("admin:billing_service_change", args=[active_service.pk])).content.decode()
    assert f'action="{admin_open_url(active_service)}"' in change_page

    response = admin_client.post(admin_open_url(active_service))

    assert response.status_code == 302
    assert f"Logged in as {active_service.panel_username}" in browser_lands(response["Location"])
    change = active_service.status_changes.order_by("pk").last()
    assert (change.changed_by, str(change.reason)) == (staff_user, f"Control panel opened as {active_service.panel_username}.")


def test_staff_cannot_make_a_key_with_a_get(admin_client, active_service, panel):
    assert admin_client.get(admin_open_url(active_service)).status_code == 405
    assert key_requests(panel) == []


def test_staff_see_no_button_and_a_message_for_a_suspended_service(admin_client, active_service, panel, tasks):
    service_action_request(service=active_service, action=PanelAction.SUSPEND, by=None, suspend_reason=SuspendReason.STAFF)
    tasks.run_all()
    change_url = reverse("admin:billing_service_change", args=[active_service.pk])

    assert admin_open_url(active_service) not in admin_client.get(change_url).content.decode()
    response = admin_client.post(admin_open_url(active_service))

    assert response["Location"] == change_url
    assert "The control panel can be opened only while the service is active." in admin_client.get(change_url).content.decode()
    assert key_requests(panel) == []


def test_staff_are_told_what_the_panel_said(admin_client, active_service, panel):
    panel.app.faults.down = True
    change_url = reverse("admin:billing_service_change", args=[active_service.pk])

    response = admin_client.post(admin_open_url(active_service))

    assert response["Location"] == change_url
    page = admin_client.get(change_url).content.decode()
    assert "The control panel did not answer; try again in a minute (" in page
    assert urlsplit(panel.url).netloc in page  # which panel: staff may have more than one


def test_staff_without_the_right_to_change_services_cannot_open_panels(client, active_service, panel):
    clerk = UserFactory(is_staff=True)
    client.force_login(clerk)

    assert client.post(admin_open_url(active_service)).status_code == 403
    assert key_requests(panel) == []


def test_staff_are_told_when_the_account_at_the_login_is_no_longer_the_services(admin_client, active_service, panel):
    panel.app.users[active_service.panel_username]["fullname"] = "Somebody else"
    change_url = reverse("admin:billing_service_change", args=[active_service.pk])

    response = admin_client.post(admin_open_url(active_service))

    assert response["Location"] == change_url
    assert "Not opened: the panel&#x27;s account at this login is not this service&#x27;s" in admin_client.get(change_url).content.decode()
    assert key_requests(panel) == []
