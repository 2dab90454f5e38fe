"""The billing cycle in the admin: staff renew, suspend for abuse and move a paid-until date; runs and notices are shown.

Today is 2026-03-25 12:00 UTC in every test (billing in UTC unless a test says otherwise).
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from unittest import mock

import pytest
import time_machine
from django.contrib import admin
from django.contrib import messages as levels
from django.contrib.auth.models import Permission
from django.contrib.messages.storage.fallback import FallbackStorage
from django.core import mail
from django.db import connection
from django.test import Client as BrowserClient
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.translation import gettext_noop

from billing.choices import (
    BillingAction,
    BillingOutcome,
    BillingRunStatus,
    LedgerEntryKind,
    NotificationKind,
    PanelAction,
    ServiceStatus,
    SuspendReason,
)
from billing.models import BillingRun, BillingRunItem, LedgerEntry, Notification, Service, ServiceStatusChange
from billing.selectors import client_balance
from billing.services import ledger_entry_add, service_renew
from billing.stored_text import Money, StoredText
from provisioning.models import Operation
from tests.billing.test_admin_messages import SERVICES, post_action, said
from tests.factories import ClientFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 25, 12, tzinfo=UTC)


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(autouse=True)
def today_in_utc(settings):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(NOW, tick=False):
        yield


def s1(balance="25.00", **fields):
    """10.00 a month, anchored 2026-01-31 10:00, paid until 2026-03-31 10:00."""
    fields = {"status": ServiceStatus.ACTIVE, "period_anchor": utc(2026, 1, 31, 10), "expires_at": utc(2026, 3, 31, 10)} | fields
    service = ServiceFactory(price=Decimal("10.00"), **fields)
    if Decimal(balance):
        ledger_entry_add(client=service.client, kind=LedgerEntryKind.TOPUP, amount=Decimal(balance))
    return service


def charges(service):
    return list(LedgerEntry.objects.filter(client=service.client, kind=LedgerEntryKind.CHARGE).values_list("amount", flat=True))


def history(service):
    return [(str(row.reason), row.from_status, row.to_status, row.changed_by) for row in service.status_changes.order_by("pk")]


def view_only_staff():
    """Staff who may look at services but change none."""
    user = UserFactory(username="viewer@example.com", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_service"))
    return user


# Renew now


def test_renew_now_charges_one_period_from_the_balance_and_says_until_when(admin_client, staff_user):
    service = s1()

    response = post_action(admin_client, SERVICES, "renew_now", service)

    assert said(response) == [
        (levels.SUCCESS, "1 service renewed."),
        (levels.SUCCESS, f"{service}: renewed until April 30, 2026."),
    ]
    service.refresh_from_db()
    assert service.expires_at == utc(2026, 4, 30, 10)
    assert charges(service) == [Decimal("-10.00")]
    assert client_balance(client=service.client) == Decimal("15.00")
    assert LedgerEntry.objects.get(kind=LedgerEntryKind.CHARGE).created_by == staff_user


def test_renew_now_says_which_services_lack_money_or_a_paid_period_and_charges_none_of_them(admin_client):
    poor = s1(balance="4.00")
    ordered = ServiceFactory(client=poor.client, price=Decimal("10.00"))

    response = post_action(admin_client, SERVICES, "renew_now", poor, ordered)

    assert sorted(said(response)) == sorted(
        [
            (levels.ERROR, f"{poor}: Not enough money on the balance: 6.00\xa0RUB more is needed."),
            (levels.ERROR, f"{ordered}: Service #{ordered.pk} has no paid period yet: pay for the order first."),
        ]
    )
    poor.refresh_from_db()
    assert poor.expires_at == utc(2026, 3, 31, 10)
    assert charges(poor) == []
    assert client_balance(client=poor.client) == Decimal("4.00")


def test_renew_now_of_a_service_renewed_since_staff_looked_charges_nothing_more(staff_user):
    service = s1()
    seen = Service.objects.get(pk=service.pk)  # the list staff looked at: paid until 2026-03-31
    service_renew(service=service)  # meanwhile the daily run renewed it until 2026-04-30
    request = RequestFactory().post("/admin/billing/service/")
    request.user, request.session = staff_user, {}
    request._messages = FallbackStorage(request)
    model_admin = admin.site._registry[Service]

    model_admin.get_actions(request)["renew_now"][0](model_admin, request, [seen])

    assert [(message.level, message.message) for message in request._messages] == [
        (levels.INFO, f"{seen}: Service #{service.pk} has just been renewed: nothing was charged.")
    ]
    service.refresh_from_db()
    assert service.expires_at == utc(2026, 4, 30, 10)
    assert charges(service) == [Decimal("-10.00")]


# Suspend for abuse


def test_suspend_for_abuse_asks_the_panel_to_suspend_with_the_reason_abuse(admin_client, staff_user):
    service = s1()
    already = s1(status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.STAFF)

    response = post_action(admin_client, SERVICES, "suspend_for_abuse", service, already)

    assert said(response) == [
        (levels.SUCCESS, "1 service will be suspended for abuse."),
        (levels.INFO, f"{already}: Service #{already.pk} is already “Suspended”: nothing to do."),
    ]
    (operation,) = Operation.objects.all()
    assert (operation.service_id, operation.action, operation.payload, operation.requested_by) == (
        service.pk,
        PanelAction.SUSPEND,
        {"suspend_reason": "abuse"},
        staff_user,
    )
    service.refresh_from_db()
    assert service.status == ServiceStatus.ACTIVE  # suspended when the panel confirms


# Change paid-until date


def expiry_url(service):
    return reverse("admin:billing_service_expiry", args=[service.pk])


def post_expiry(client, service, day="2026-05-15", time="14:30", reason="goodwill after the outage of March 20"):
    return client.post(expiry_url(service), {"expires_at_0": day, "expires_at_1": time, "reason": reason})


def snapshot(service):
    return Service.objects.filter(pk=service.pk).values().get(), ServiceStatusChange.objects.filter(service=service).count()


def test_the_change_page_links_to_the_paid_until_page_and_keeps_the_cycle_fields_read_only(admin_client):
    service = s1()

    response = admin_client.get(reverse("admin:billing_service_change", args=[service.pk]))

    assert response.status_code == 200
    form_fields = response.context["adminform"].form.fields
    assert [name for name in ["expires_at", "period_anchor", "auto_renew", "suspend_reason", "suspended_at"] if name in form_fields] == []
    html = response.content.decode()
    assert f'href="{expiry_url(service)}" id="service-expiry-link"' in html
    assert "Next charge: 10.00\xa0RUB on March 28, 2026." in html


def test_an_overdue_service_says_when_it_is_suspended(admin_client):
    service = s1(expires_at=utc(2026, 3, 24, 10))

    response = admin_client.get(reverse("admin:billing_service_change", args=[service.pk]))

    assert "Overdue: suspended on March 27, 2026 unless paid." in response.content.decode()


def test_the_paid_until_page_shows_the_current_date(admin_client):
    service = s1()

    response = admin_client.get(expiry_url(service))

    assert response.status_code == 200
    assert "Paid until March 31, 2026, 10 a.m. now." in response.content.decode()
    assert response.context["form"]["expires_at"].value() == utc(2026, 3, 31, 10)


def test_staff_move_the_paid_until_date_with_a_reason_kept_in_the_history(admin_client, staff_user):
    service = s1()

    response = post_expiry(admin_client, service)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:billing_service_change", args=[service.pk])
    assert said(admin_client.get(response["Location"])) == [
        (levels.SUCCESS, "Paid until changed to May 15, 2026, 2:30 p.m.; the reason is kept in the service's history.")
    ]
    service.refresh_from_db()
    # 14:30 on the 15th is none of the anchor's period ends: the following periods end on the 15th at 14:30.
    assert (service.expires_at, service.period_anchor) == (utc(2026, 5, 15, 14, 30), utc(2026, 5, 15, 14, 30))
    assert history(service) == [
        (
            "Paid until changed by staff: March 31, 2026 → May 15, 2026 (goodwill after the outage of March 20).",
            "active",
            "active",
            staff_user,
        )
    ]
    assert charges(service) == []


def test_a_date_on_the_anchors_day_keeps_the_anchor(admin_client):
    service = s1()

    post_expiry(admin_client, service, day="2026-05-31", time="10:00")

    service.refresh_from_db()
    assert (service.expires_at, service.period_anchor) == (utc(2026, 5, 31, 10), utc(2026, 1, 31, 10))


def test_the_date_is_read_in_the_billing_time_zone(admin_client, settings):
    settings.TIME_ZONE = "Europe/Moscow"
    service = s1()

    post_expiry(admin_client, service, day="2026-05-15", time="14:30")

    service.refresh_from_db()
    assert service.expires_at == utc(2026, 5, 15, 11, 30)


@pytest.mark.parametrize("reason", ["", "   "])
def test_without_a_reason_nothing_changes(admin_client, reason):
    service = s1()
    before = snapshot(service)

    response = post_expiry(admin_client, service, reason=reason)

    assert response.status_code == 200
    assert response.context["form"].errors == {"reason": ["This field is required."]}
    assert snapshot(service) == before


@pytest.mark.parametrize(
    ("day", "time", "error"),
    [
        ("2026-02-30", "10:00", "Enter a valid date."),
        ("abc", "10:00", "Enter a valid date."),
        ("2026-05-15", "25:61", "Enter a valid time."),
        ("99999-01-01", "10:00", "Enter a valid date."),
        ("\x00", "\x00", "Enter a valid date."),
        ("9" * 10_000, "10:00", "Enter a valid date."),
        ("2036-03-26", "10:00", "Choose a date within 10 years of today."),
        ("2016-03-24", "10:00", "Choose a date within 10 years of today."),
        ("", "", "This field is required."),
    ],
)
def test_junk_dates_are_form_errors_and_change_nothing(admin_client, day, time, error):
    service = s1()
    before = snapshot(service)

    response = post_expiry(admin_client, service, day=day, time=time)

    assert response.status_code == 200
    assert error in response.context["form"].errors["expires_at"]
    assert snapshot(service) == before


def test_the_last_minute_of_year_9999_west_of_utc_is_a_form_error(admin_client, settings):
    settings.TIME_ZONE = "America/New_York"  # 9999-12-31 23:59 there is past the last datetime in UTC
    service = s1()
    before = snapshot(service)

    response = post_expiry(admin_client, service, day="9999-12-31", time="23:59")

    assert response.context["form"].errors == {"expires_at": ["Choose a date within 10 years of today."]}
    assert snapshot(service) == before


def test_a_reason_of_10000_characters_is_refused(admin_client):
    service = s1()
    before = snapshot(service)

    response = post_expiry(admin_client, service, reason="A" * 10_000)

    assert response.context["form"].errors == {"reason": ["Ensure this value has at most 500 characters (it has 10000)."]}
    assert snapshot(service) == before


def test_the_same_date_again_changes_nothing_and_says_so(admin_client):
    service = s1()
    before = snapshot(service)

    response = post_expiry(admin_client, service, day="2026-03-31", time="10:00")

    assert response.context["form"].non_field_errors() == [f"Service #{service.pk} already expires then: nothing was changed."]
    assert snapshot(service) == before


def test_a_service_without_a_running_period_keeps_its_dates(admin_client):
    ordered = ServiceFactory()
    before = snapshot(ordered)

    response = post_expiry(admin_client, ordered)

    assert response.context["form"].non_field_errors() == [f"Service #{ordered.pk} has no running period: its expiry cannot be changed."]
    assert snapshot(ordered) == before


def test_staff_who_may_only_view_services_are_refused_and_see_no_link():
    service = s1()
    before = snapshot(service)
    browser = BrowserClient()
    browser.force_login(view_only_staff())

    assert browser.get(expiry_url(service)).status_code == 403
    assert post_expiry(browser, service).status_code == 403
    change_page = browser.get(reverse("admin:billing_service_change", args=[service.pk]))
    assert change_page.status_code == 200
    assert "service-expiry-link" not in change_page.content.decode()
    assert snapshot(service) == before


def test_a_client_is_sent_to_the_admin_login(client):
    service = s1()
    before = snapshot(service)
    client.force_login(UserFactory(username="ann@example.com"))

    response = post_expiry(client, service)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert snapshot(service) == before


def test_a_post_without_the_csrf_token_is_refused(staff_user):
    service = s1()
    before = snapshot(service)
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(staff_user)

    assert post_expiry(browser, service).status_code == 403
    assert snapshot(service) == before


@pytest.mark.parametrize("object_id", ["abc", "9" * 30, "-1", "%00"])
def test_an_unknown_service_is_a_redirect_with_a_message(admin_client, object_id):
    response = admin_client.get(f"/admin/billing/service/{object_id}/expiry/")

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_the_paid_until_page_speaks_russian(admin_client):
    service = s1()

    response = admin_client.get("/ru" + expiry_url(service))

    assert response.status_code == 200
    assert "31 марта 2026 г." in response.content.decode()  # noqa: RUF001


# Service list filters


def listed(client, **params):
    response = client.get(reverse(SERVICES), params)
    assert response.status_code == 200
    return {service.domain for service in response.context["cl"].result_list}


@pytest.fixture
def cycle_services():
    for domain, status, expires_at, reason in [
        ("later-today", ServiceStatus.ACTIVE, utc(2026, 3, 25, 18), ""),
        ("in-7-days", ServiceStatus.ACTIVE, utc(2026, 4, 1, 23, 59), ""),
        ("in-8-days", ServiceStatus.ACTIVE, utc(2026, 4, 2), ""),
        ("in-30-days", ServiceStatus.ACTIVE, utc(2026, 4, 24, 23), ""),
        ("in-31-days", ServiceStatus.ACTIVE, utc(2026, 4, 25), ""),
        ("earlier-today", ServiceStatus.ACTIVE, utc(2026, 3, 25, 11), ""),
        ("unpaid", ServiceStatus.SUSPENDED, utc(2026, 3, 10), SuspendReason.NONPAYMENT),
        ("abuse", ServiceStatus.SUSPENDED, utc(2026, 3, 30), SuspendReason.ABUSE),
        ("deleted", ServiceStatus.DELETED, utc(2026, 3, 27), ""),
        ("ordered", ServiceStatus.ORDERED, None, ""),
    ]:
        ServiceFactory(domain=domain, status=status, expires_at=expires_at, suspend_reason=reason)


def test_expires_in_the_next_7_days_includes_today_and_the_7th_day(admin_client, cycle_services):
    assert listed(admin_client, expires="7") == {"later-today", "in-7-days", "abuse"}


def test_expires_in_the_next_30_days(admin_client, cycle_services):
    assert listed(admin_client, expires="30") == {"later-today", "in-7-days", "in-8-days", "in-30-days", "abuse"}


def test_overdue_is_active_and_past_its_expiry(admin_client, cycle_services):
    assert listed(admin_client, expires="overdue") == {"earlier-today"}


def test_suspended_for_non_payment(admin_client, cycle_services):
    assert listed(admin_client, expires="nonpayment") == {"unpaid"}


@pytest.mark.parametrize("junk", ["junk", "", "\x00", "9" * 30])
def test_a_junk_filter_value_is_ignored(admin_client, cycle_services, junk):
    assert len(listed(admin_client, expires=junk)) == 10


# Billing runs and their items


def a_run(day=date(2026, 3, 25), **fields):
    fields = {"status": BillingRunStatus.DONE, "started_at": NOW, "lease_until": NOW, "finished_at": NOW} | fields
    return BillingRun.objects.create(day=day, **fields)


NO_MONEY = StoredText(
    gettext_noop("Not enough money on the balance: %(missing)s more is needed."), {"missing": Money(Decimal("6.00"), "RUB")}
)


def test_a_run_is_read_only_and_links_to_its_items(admin_client):
    run = a_run(renewed=2, failed=1)
    model_admin = admin_client.get(reverse("admin:billing_billingrun_changelist")).context["cl"].model_admin

    page = admin_client.get(reverse("admin:billing_billingrun_change", args=[run.pk]))

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    request = RequestFactory().get("/")
    request.user = page.wsgi_request.user
    assert (model_admin.has_add_permission(request), model_admin.has_delete_permission(request, run)) == (False, False)
    items_url = reverse("admin:billing_billingrunitem_changelist") + f"?run__id__exact={run.pk}"
    assert f'href="{items_url}"' in page.content.decode()


def test_runs_filter_by_status_and_dry_run(admin_client):
    a_run(day=date(2026, 3, 24))
    failed = a_run(day=date(2026, 3, 25), status=BillingRunStatus.FAILED, failed=1)
    dry = a_run(day=date(2026, 3, 25), dry_run=True)
    url = reverse("admin:billing_billingrun_changelist")

    assert list(admin_client.get(url, {"status__exact": "failed"}).context["cl"].result_list) == [failed]
    assert list(admin_client.get(url, {"dry_run__exact": "1"}).context["cl"].result_list) == [dry]
    assert admin_client.get(url, {"day__year": "2026", "day__month": "3", "day__day": "24"}).context["cl"].result_count == 1


def items_of(client, **params):
    response = client.get(reverse("admin:billing_billingrunitem_changelist"), params)
    assert response.status_code == 200
    return response


def test_a_runs_items_are_listed_with_their_messages_in_the_readers_language(admin_client):
    run, other = a_run(), a_run(day=date(2026, 3, 24))
    poor, renewed = ServiceFactory(), ServiceFactory()
    BillingRunItem.objects.create(run=run, service=poor, action=BillingAction.RENEW, outcome=BillingOutcome.FAILED, message=NO_MONEY)
    BillingRunItem.objects.create(run=run, service=renewed, action=BillingAction.RENEW, outcome=BillingOutcome.DONE)
    BillingRunItem.objects.create(run=other, service=poor, action=BillingAction.NOTICE, outcome=BillingOutcome.DONE)

    english = items_of(admin_client, run__id__exact=run.pk, outcome__exact="failed")
    russian = admin_client.get("/ru" + reverse("admin:billing_billingrunitem_changelist"), {"run__id__exact": run.pk, "q": poor.pk})

    assert [item.service for item in english.context["cl"].result_list] == [poor]
    assert "Not enough money on the balance: 6.00\xa0RUB more is needed." in english.content.decode()
    assert [item.run for item in russian.context["cl"].result_list] == [run]
    assert "Недостаточно средств на балансе: не хватает 6,00\xa0RUB." in russian.content.decode()
    assert items_of(admin_client, action__exact="notice").context["cl"].result_count == 1


def add_items(run, count):
    for _ in range(count):
        BillingRunItem.objects.create(
            run=run, service=ServiceFactory(), action=BillingAction.RENEW, outcome=BillingOutcome.FAILED, message=NO_MONEY
        )


def test_a_runs_item_list_runs_the_same_few_queries_for_5_or_50_rows(admin_client):
    run = a_run()
    url = reverse("admin:billing_billingrunitem_changelist") + f"?run__id__exact={run.pk}"
    add_items(run, 5)
    admin_client.get(url)  # session and content types cached, as for the measurement below

    with CaptureQueriesContext(connection) as five:
        assert len(admin_client.get(url).context["cl"].result_list) == 5
    add_items(run, 45)
    with CaptureQueriesContext(connection) as fifty:
        assert len(admin_client.get(url).context["cl"].result_list) == 50

    assert len(five) == len(fifty) <= 5


# Notifications


def a_notice(service, kind=NotificationKind.LOW_BALANCE, **fields):
    return Notification.objects.create(
        client=service.client, service=service, kind=kind, key=f"{kind}:{service.pk}", day=date(2026, 3, 24), **fields
    )


def test_notifications_filter_by_kind_and_sent_and_search_by_client(admin_client):
    sent = a_notice(ServiceFactory(client=ClientFactory(name="Ann's Bakery", email="ann@example.com")), sent_at=NOW)
    failed = a_notice(ServiceFactory(), kind=NotificationKind.RENEWED, error="SMTPServerDisconnected: down")
    url = reverse("admin:billing_notification_changelist")

    def found(**params):
        return list(admin_client.get(url, params).context["cl"].result_list)

    assert found(sent="yes") == [sent]
    assert found(sent="no") == [failed]
    assert found(kind__exact="renewed") == [failed]
    assert found(q="bakery") == [sent]
    assert found(q="ann@example") == [sent]
    assert len(found(sent="junk")) == 2
    page = admin_client.get(reverse("admin:billing_notification_change", args=[failed.pk]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert "SMTPServerDisconnected: down" in page.content.decode()


LOW_BALANCE_PARAMS = {"expires": "2026-03-31", "amount": "10.00", "balance": "4.00", "missing": "6.00"}
NOTIFICATIONS = "admin:billing_notification_changelist"


def test_send_again_sends_an_unsent_notice_once_and_never_a_sent_one(admin_client):
    customer = ClientFactory(email="ann@example.com")
    unsent = a_notice(ServiceFactory(client=customer), params=LOW_BALANCE_PARAMS, error="SMTPServerDisconnected: down")
    sent = a_notice(ServiceFactory(client=customer), params=LOW_BALANCE_PARAMS, sent_at=utc(2026, 3, 24, 0, 30))

    response = post_action(admin_client, NOTIFICATIONS, "send_again", unsent, sent)

    assert said(response) == [(levels.SUCCESS, "1 notification sent."), (levels.INFO, f"{sent}: It has already been sent.")]
    assert [(message.to, message.subject) for message in mail.outbox] == [
        (["ann@example.com"], f"Top up your balance: service #{unsent.service_id} expires on March 31, 2026")
    ]
    unsent.refresh_from_db()
    assert (unsent.sent_at, unsent.error) == (NOW, "")


def test_send_again_while_the_mail_server_is_down_keeps_it_unsent_and_says_why(admin_client):
    unsent = a_notice(ServiceFactory(), params=LOW_BALANCE_PARAMS)

    with mock.patch("django.core.mail.backends.locmem.EmailBackend.send_messages", side_effect=ConnectionRefusedError("refused")):
        response = post_action(admin_client, NOTIFICATIONS, "send_again", unsent)

    assert said(response) == [(levels.ERROR, f"{unsent}: It could not be sent: ConnectionRefusedError: refused")]
    unsent.refresh_from_db()
    assert (unsent.sent_at, unsent.error) == (None, "ConnectionRefusedError: refused")


def test_staff_who_may_only_view_notifications_cannot_send_them():
    unsent = a_notice(ServiceFactory(), params=LOW_BALANCE_PARAMS)
    viewer = UserFactory(username="viewer@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_notification"))
    browser = BrowserClient()
    browser.force_login(viewer)

    assert "send_again" not in browser.get(reverse(NOTIFICATIONS)).content.decode()
    browser.post(reverse(NOTIFICATIONS), {"action": "send_again", "_selected_action": [unsent.pk]})

    assert mail.outbox == []
    unsent.refresh_from_db()
    assert unsent.sent_at is None
