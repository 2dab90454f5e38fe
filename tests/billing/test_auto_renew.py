"""Auto-renew: on by default, switched by the client in the client area and by staff in the admin."""

from datetime import UTC, datetime

import pytest
from django.contrib.messages import constants
from django.urls import reverse

from billing.choices import ServiceStatus
from billing.services import NothingToDo, service_auto_renew_set
from tests.billing.test_admin_messages import SERVICES, post_action, said
from tests.billing.test_client_pages import Page, messages_of
from tests.factories import ClientFactory, ServiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def active(customer):
    return ServiceFactory(
        client=customer, status=ServiceStatus.ACTIVE, period_anchor=datetime(2026, 1, 31, 10, tzinfo=UTC),
        expires_at=datetime(2026, 2, 28, 10, tzinfo=UTC),
    )  # fmt: skip


def switch(client, service, enabled):
    return client.post(reverse("service_auto_renew", args=[service.pk]), {"enabled": enabled}, follow=True)


def history(service):
    return [(str(row.reason), row.from_status, row.to_status) for row in service.status_changes.order_by("pk")]


def test_a_new_service_renews_by_itself():
    assert ServiceFactory().auto_renew is True


def test_the_service_page_shows_paid_until_and_auto_renew_in_the_readers_language(logged_in, active, settings):
    settings.TIME_ZONE = "UTC"

    english = Page(logged_in.get(reverse("service_detail", args=[active.pk])))
    russian = Page(logged_in.get("/ru" + reverse("service_detail", args=[active.pk])))

    assert (english.text("service-expires"), english.text("service-auto-renew")) == ("Feb. 28, 2026", "On: renewed from your balance")
    assert russian.text("service-expires") == "28 февраля 2026 г."  # noqa: RUF001
    assert russian.text("service-auto-renew") == "Включено: продление с баланса"  # noqa: RUF001


def test_the_client_turns_auto_renew_off_and_on_again(logged_in, user, active):
    response = switch(logged_in, active, "off")

    assert messages_of(response) == ["Auto-renew is off."]
    assert Page(response).text("service-auto-renew") == "Off"
    active.refresh_from_db()
    assert active.auto_renew is False

    switch(logged_in, active, "on")

    active.refresh_from_db()
    assert active.auto_renew is True
    assert history(active) == [("Auto-renew turned off.", "active", "active"), ("Auto-renew turned on.", "active", "active")]
    assert set(active.status_changes.values_list("changed_by", flat=True)) == {user.pk}


def test_switching_to_what_it_already_is_says_so_and_writes_nothing(logged_in, active):
    response = switch(logged_in, active, "on")

    assert messages_of(response) == [f"Auto-renew of service #{active.pk} is already on."]
    assert history(active) == []


def test_another_clients_service_is_a_404_and_stays_as_it_was(logged_in):
    other = ServiceFactory(client=ClientFactory(), status=ServiceStatus.ACTIVE)

    assert logged_in.post(reverse("service_auto_renew", args=[other.pk]), {"enabled": "off"}).status_code == 404
    other.refresh_from_db()
    assert other.auto_renew is True


def test_the_switch_is_a_post(logged_in, active):
    assert logged_in.get(reverse("service_auto_renew", args=[active.pk]), {"enabled": "off"}).status_code == 405
    active.refresh_from_db()
    assert active.auto_renew is True


def test_a_deleted_service_has_nothing_to_renew(customer):
    deleted = ServiceFactory(client=customer, status=ServiceStatus.DELETED)

    with pytest.raises(Exception, match="is deleted: there is nothing to renew") as refused:
        service_auto_renew_set(service=deleted, enabled=False)

    assert not isinstance(refused.value, NothingToDo)
    deleted.refresh_from_db()
    assert deleted.auto_renew is True


def test_staff_switch_auto_renew_for_many_services_and_are_told_what_changed(admin_client, customer, active):
    already_off = ServiceFactory(client=customer, status=ServiceStatus.ACTIVE, auto_renew=False)

    response = post_action(admin_client, SERVICES, "auto_renew_off", active, already_off)

    assert said(response) == [
        (constants.SUCCESS, "Auto-renew turned off for 1 service."),
        (constants.INFO, f"{already_off}: Auto-renew of service #{already_off.pk} is already off."),
    ]
    active.refresh_from_db()
    assert active.auto_renew is False


@pytest.mark.parametrize("value", ["", "yes", "ON", "1"])
def test_the_switch_takes_only_on_or_off(logged_in, customer, value):
    service = ServiceFactory(client=customer, status=ServiceStatus.ACTIVE)

    response = logged_in.post(reverse("service_auto_renew", args=[service.pk]), {"enabled": value}, follow=True)

    service.refresh_from_db()
    assert service.auto_renew is True
    assert "This action is not available." in response.content.decode()
