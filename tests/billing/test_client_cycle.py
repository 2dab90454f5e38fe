"""The billing cycle in the client area: paid until, next charge, overdue, suspended for non-payment,
Renew now with its confirmation, the balance banner and the notifications page.

Dates are UTC (the billing time zone here); the clock stands still at NOW unless a test moves it.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape

import pytest
import time_machine
from django.urls import reverse

from billing.choices import BillingPeriod, LedgerEntryKind, NotificationKind, ServiceStatus, SuspendReason
from billing.forms import renewal_length
from billing.models import LedgerEntry, Notification
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from tests.billing.test_client_pages import Page, messages_of
from tests.factories import ClientFactory, ServiceFactory, TariffPlanFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)
RENEW_TOO_LONG = "Choose how long to renew for: 1 to 12 periods."
EXPIRES_INVALID = "The renewal form did not carry a valid paid-until date: open the service page and renew from there."


def utc(*parts):
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock(settings):
    settings.TIME_ZONE = "UTC"
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def tariff(db):
    return TariffPlanFactory(name="Start", monthly_price=Decimal("10.00"))


def credit(client, amount):
    """Money on the balance (an adjustment: what a top-up triggers in the cycle is not what these tests look at)."""
    ledger_entry_add(client=client, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal(amount), reference="opening balance")


def started(client, tariff, **fields):
    """A service in its billing cycle: monthly at 10.00 from 31 January 10:00, paid until 28 February 10:00."""
    fields = {
        "status": ServiceStatus.ACTIVE,
        "price": Decimal("10.00"),
        "domain": "bakery.example.com",
        "period_anchor": utc(2026, 1, 31, 10),
        "expires_at": utc(2026, 2, 28, 10),
        **fields,
    }
    return ServiceFactory(client=client, tariff=tariff, **fields)


@pytest.fixture
def active(customer, tariff):
    return started(customer, tariff)


def service_page(client, service, prefix=""):
    return client.get(prefix + reverse("service_detail", args=[service.pk]))


def renew_url(service):
    return reverse("service_renew", args=[service.pk])


def charges(customer):
    return list(LedgerEntry.objects.filter(client=customer, kind=LedgerEntryKind.CHARGE).values_list("amount", flat=True))


def options(response):
    """The Renew now choices as the client reads them."""
    found = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', response.content.decode())
    return [(value, " ".join(unescape(label).split())) for value, label in found]


def service_row(response, service):
    """The services table's row of a service, each cell's text."""
    rows = Page(response).table()
    return next(row for row in rows if row and row[0] == str(service.pk))


def confirm(client, service, periods, expires):
    return client.post(renew_url(service), {"periods": periods, "expires": expires, "confirm": "yes"}, follow=True)


# What the client area shows


def test_an_active_service_shows_paid_until_and_the_next_charge_on_its_page_and_in_the_list(logged_in, active):
    page = Page(service_page(logged_in, active))

    assert page.text("service-status") == "Active"
    assert page.text("service-expires") == "Feb. 28, 2026"
    # Renewed three days before the expiry.
    assert page.text("service-next-charge") == "Feb. 25, 2026 · 10.00 RUB"
    assert page.text("service-auto-renew") == "On: renewed from your balance"
    assert "service-overdue" not in page.ids and "billing-state" not in page.ids
    assert "renew-now" in page.ids
    for listing in ("client_area", "orders"):
        row = service_row(logged_in.get(reverse(listing)), active)
        assert row == [str(active.pk), "Start", "bakery.example.com", "Active", "Feb. 28, 2026", "Feb. 25, 2026 · 10.00 RUB", "—"]


def test_with_auto_renew_off_there_is_no_next_charge(logged_in, customer, tariff):
    service = started(customer, tariff, auto_renew=False)

    page = Page(service_page(logged_in, service))

    assert page.text("service-auto-renew") == "Off"
    assert "service-next-charge" not in page.ids
    assert service_row(logged_in.get(reverse("client_area")), service)[4:6] == ["Feb. 28, 2026", "Auto-renew off"]


def test_an_unpaid_service_past_its_expiry_is_overdue_with_the_day_it_will_be_suspended(logged_in, active, clock):
    clock.move_to(utc(2026, 3, 2, 12))

    page = Page(service_page(logged_in, active))

    assert (page.text("service-status"), page.text("service-overdue")) == ("Active", "Overdue")
    assert page.text("billing-state") == (
        "Overdue: the paid period ended on Feb. 28, 2026. Renew it, or the service will be suspended on March 3, 2026. Top up the balance"
    )
    # Auto-renew charges it as soon as the balance allows: from today on.
    assert page.text("service-next-charge") == "March 2, 2026 · 10.00 RUB"
    row = service_row(logged_in.get(reverse("client_area")), active)
    assert row[3:6] == ["Active Overdue will be suspended on March 3, 2026", "Feb. 28, 2026", "March 2, 2026 · 10.00 RUB"]


def test_the_day_before_its_expiry_a_service_is_not_overdue(logged_in, active, clock):
    clock.move_to(utc(2026, 2, 28, 9, 59))

    page = Page(service_page(logged_in, active))

    assert "service-overdue" not in page.ids and "billing-state" not in page.ids


def test_a_service_suspended_for_non_payment_says_when_it_will_be_deleted_and_how_to_get_it_back(logged_in, customer, tariff, clock):
    clock.move_to(utc(2026, 3, 5, 12))
    service = started(
        customer, tariff, status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT, suspended_at=utc(2026, 3, 3, 0, 30)
    )

    response = service_page(logged_in, service)

    page = Page(response)
    assert page.text("service-status") == "Suspended"
    assert page.text("billing-state") == (
        "Suspended for non-payment: renew it to have it resumed. "
        "Otherwise the account will be deleted with all its files on March 17, 2026. Top up the balance"
    )
    assert f'href="{reverse("balance")}"' in response.content.decode()
    assert "renew-now" in page.ids
    row = service_row(logged_in.get(reverse("client_area")), service)
    assert row[3:5] == ["Suspended for non-payment will be deleted on March 17, 2026", "Feb. 28, 2026"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (ServiceStatus.SUSPENDED, SuspendReason.ABUSE),
        (ServiceStatus.SUSPENDED, SuspendReason.STAFF),
        (ServiceStatus.FAILED, ""),
        (ServiceStatus.DELETED, ""),
        (ServiceStatus.PROCESSING, ""),
    ],
)
def test_renew_now_is_not_offered_nor_accepted_for_a_service_the_client_cannot_renew(logged_in, customer, tariff, status, reason):
    service = started(customer, tariff, status=status, suspend_reason=reason)
    credit(customer, "100.00")

    assert "renew-now" not in Page(service_page(logged_in, service)).ids
    shown = logged_in.get(renew_url(service), {"periods": 1, "expires": service.expires_at.isoformat()}, follow=True)
    done = confirm(logged_in, service, 1, service.expires_at.isoformat())

    assert messages_of(shown) == messages_of(done) == ["This action is not available now."]
    assert charges(customer) == []
    service.refresh_from_db()
    assert service.expires_at == utc(2026, 2, 28, 10)


def test_an_order_not_paid_yet_has_no_renew_now(logged_in, customer, tariff):
    order = ServiceFactory(client=customer, tariff=tariff, price=Decimal("10.00"))

    page = Page(service_page(logged_in, order))

    assert "renew-now" not in page.ids and "service-expires" not in page.ids
    assert messages_of(logged_in.get(renew_url(order), {"periods": 1, "expires": "2026-02-28T10:00:00+00:00"}, follow=True)) == [
        "This action is not available now."
    ]


def test_a_service_the_client_suspended_itself_can_be_renewed(logged_in, customer, tariff):
    service = started(customer, tariff, status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.CLIENT)

    assert "renew-now" in Page(service_page(logged_in, service)).ids


# Renew now: the choice


def test_the_choice_lists_1_to_12_periods_with_their_total_price(logged_in, active):
    found = options(service_page(logged_in, active))

    assert found[:3] == [("1", "1 month — 10.00 RUB"), ("2", "2 months — 20.00 RUB"), ("3", "3 months — 30.00 RUB")]
    assert found[-1] == ("12", "12 months — 120.00 RUB")
    assert len(found) == 12


def test_a_quarterly_service_is_renewed_in_quarters(logged_in, customer, tariff):
    service = started(customer, tariff, period=BillingPeriod.QUARTER, price=Decimal("25.00"), expires_at=utc(2026, 4, 30, 10))

    found = options(service_page(logged_in, service))

    assert found[:2] == [("1", "1 quarter (3 months) — 25.00 RUB"), ("2", "2 quarters (6 months) — 50.00 RUB")]
    assert found[-1] == ("12", "12 quarters (36 months) — 300.00 RUB")


def test_the_length_of_a_renewal_is_said_in_the_tariffs_unit():
    assert [renewal_length(period, count) for period, count in [(1, 1), (1, 5), (3, 1), (6, 2), (12, 1), (12, 3), (24, 1), (24, 2)]] == [
        "1 month",
        "5 months",
        "1 quarter (3 months)",
        "2 half-years (12 months)",
        "1 year",
        "3 years",
        "2 years",
        "4 years",
    ]


# Renew now: confirmation and payment


def test_renew_now_shows_the_amount_and_the_new_date_then_charges_once_and_moves_the_expiry(logged_in, customer, active):
    credit(customer, "25.00")
    seen = Page(service_page(logged_in, active)).inputs["expires"]["value"]
    assert seen == "2026-02-28T10:00:00+00:00"

    confirmation = logged_in.get(renew_url(active), {"periods": "1", "expires": seen})

    page = Page(confirmation)
    assert (page.text("renew-length"), page.text("renew-amount")) == ("1 month", "10.00 RUB")
    assert page.text("renew-until") == "Feb. 28, 2026 → March 31, 2026"
    assert page.text("renew-balance") == "25.00 RUB"
    assert "renew-short" not in page.ids
    assert page.inputs["expires"]["value"] == seen
    assert charges(customer) == []

    response = confirm(logged_in, active, "1", seen)

    assert response.redirect_chain == [(reverse("service_detail", args=[active.pk]), 302)]
    assert messages_of(response) == [f"Service #{active.pk} is renewed until March 31, 2026. Your balance is now 15.00\xa0RUB."]
    assert Page(response).text("service-expires") == "March 31, 2026"
    assert charges(customer) == [Decimal("-10.00")]
    assert client_balance(client=customer) == Decimal("15.00")
    active.refresh_from_db()
    assert active.expires_at == utc(2026, 3, 31, 10)


def test_renewing_three_months_ahead_charges_three_periods_and_keeps_the_anchor_day(logged_in, customer, active):
    credit(customer, "40.00")

    page = Page(logged_in.get(renew_url(active), {"periods": "3", "expires": "2026-02-28T10:00:00+00:00"}))
    assert (page.text("renew-amount"), page.text("renew-until")) == ("30.00 RUB", "Feb. 28, 2026 → May 31, 2026")
    response = confirm(logged_in, active, "3", "2026-02-28T10:00:00+00:00")

    assert messages_of(response) == [f"Service #{active.pk} is renewed until May 31, 2026. Your balance is now 10.00\xa0RUB."]
    assert charges(customer) == [Decimal("-30.00")]
    active.refresh_from_db()
    assert active.expires_at == utc(2026, 5, 31, 10)


def test_the_expiry_the_client_saw_may_be_written_in_another_offset(logged_in, customer, active):
    credit(customer, "10.00")

    confirm(logged_in, active, "1", "2026-02-28T13:00:00+03:00")

    assert charges(customer) == [Decimal("-10.00")]


def test_an_overdue_service_renewed_late_gains_no_days(logged_in, customer, active, clock):
    clock.move_to(utc(2026, 3, 2, 12))
    credit(customer, "10.00")

    confirm(logged_in, active, "1", "2026-02-28T10:00:00+00:00")

    active.refresh_from_db()
    assert active.expires_at == utc(2026, 3, 31, 10)
    assert "service-overdue" not in Page(service_page(logged_in, active)).ids


def test_a_service_suspended_for_non_payment_is_renewed_from_its_old_expiry(logged_in, customer, tariff, clock):
    clock.move_to(utc(2026, 3, 5, 12))
    credit(customer, "10.00")
    service = started(
        customer, tariff, status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.NONPAYMENT, suspended_at=utc(2026, 3, 3, 0, 30)
    )

    page = Page(logged_in.get(renew_url(service), {"periods": "1", "expires": "2026-02-28T10:00:00+00:00"}))
    response = confirm(logged_in, service, "1", "2026-02-28T10:00:00+00:00")

    assert page.text("renew-until") == "Feb. 28, 2026 → March 31, 2026"
    assert messages_of(response) == [f"Service #{service.pk} is renewed until March 31, 2026. Your balance is now 0.00\xa0RUB."]
    assert charges(customer) == [Decimal("-10.00")]


def test_without_the_yes_a_post_only_shows_the_confirmation_and_charges_nothing(logged_in, customer, active):
    credit(customer, "25.00")

    response = logged_in.post(renew_url(active), {"periods": "1", "expires": "2026-02-28T10:00:00+00:00"})

    assert response.status_code == 200
    assert Page(response).text("renew-amount") == "10.00 RUB"
    assert charges(customer) == []
    active.refresh_from_db()
    assert active.expires_at == utc(2026, 2, 28, 10)


def test_not_enough_money_says_how_much_more_links_to_the_balance_and_charges_nothing(logged_in, customer, active):
    credit(customer, "5.00")

    page = Page(logged_in.get(renew_url(active), {"periods": "1", "expires": "2026-02-28T10:00:00+00:00"}))
    response = confirm(logged_in, active, "1", "2026-02-28T10:00:00+00:00")

    assert page.text("renew-short") == "Your balance is not enough: top up 5.00 RUB first."
    assert response.redirect_chain == [(reverse("service_detail", args=[active.pk]), 302)]
    assert messages_of(response) == [
        'Not enough money on the balance: 5.00\xa0RUB more is needed. <a href="/account/balance/?amount=5.00">Top up the balance</a>'
    ]
    # The link is a link on the page, not escaped text.
    assert '<a href="/account/balance/?amount=5.00">Top up the balance</a>' in response.content.decode()
    assert charges(customer) == []
    assert client_balance(client=customer) == Decimal("5.00")
    active.refresh_from_db()
    assert active.expires_at == utc(2026, 2, 28, 10)


def test_a_second_yes_with_the_expiry_seen_before_charges_nothing(logged_in, customer, active):
    credit(customer, "100.00")

    confirm(logged_in, active, "1", "2026-02-28T10:00:00+00:00")
    again = confirm(logged_in, active, "1", "2026-02-28T10:00:00+00:00")

    assert messages_of(again) == [f"Service #{active.pk} has just been renewed: nothing was charged."]
    assert charges(customer) == [Decimal("-10.00")]
    active.refresh_from_db()
    assert active.expires_at == utc(2026, 3, 31, 10)


def test_a_confirmation_opened_from_an_outdated_page_sends_the_client_back_to_the_new_date(logged_in, customer, active):
    credit(customer, "100.00")
    confirm(logged_in, active, "1", "2026-02-28T10:00:00+00:00")

    response = logged_in.get(renew_url(active), {"periods": "1", "expires": "2026-02-28T10:00:00+00:00"}, follow=True)

    assert messages_of(response) == [f"Service #{active.pk} has just been renewed: check its new paid-until date first."]
    assert Page(response).text("service-expires") == "March 31, 2026"
    assert charges(customer) == [Decimal("-10.00")]


@pytest.mark.parametrize("periods", ["0", "13", "abc", "", "1.0", "-1", "\uff11"])  # the last: a full-width 1
def test_a_number_of_periods_out_of_the_choice_is_refused_clearly(logged_in, customer, active, periods):
    credit(customer, "1000.00")

    shown = logged_in.get(renew_url(active), {"periods": periods, "expires": "2026-02-28T10:00:00+00:00"}, follow=True)
    done = confirm(logged_in, active, periods, "2026-02-28T10:00:00+00:00")

    assert shown.redirect_chain == done.redirect_chain == [(reverse("service_detail", args=[active.pk]), 302)]
    assert messages_of(shown) == messages_of(done) == [RENEW_TOO_LONG]
    assert charges(customer) == []


@pytest.mark.parametrize(
    "expires",
    ["", "yesterday", "2026-02-28", "2026-02-28T10:00:00", "2026-02-30T10:00:00+00:00", "2026-02-28T10:00:00+25:00", "\x00", "9" * 5000],
)
def test_a_junk_expiry_is_refused_clearly_and_charges_nothing(logged_in, customer, active, expires):
    credit(customer, "1000.00")

    shown = logged_in.get(renew_url(active), {"periods": "1", "expires": expires}, follow=True)
    done = confirm(logged_in, active, "1", expires)

    assert messages_of(shown) == messages_of(done) == [EXPIRES_INVALID]
    assert charges(customer) == []
    active.refresh_from_db()
    assert active.expires_at == utc(2026, 2, 28, 10)


def test_without_an_expiry_at_all_the_renewal_is_refused(logged_in, customer, active):
    credit(customer, "1000.00")

    response = logged_in.post(renew_url(active), {"periods": "1", "confirm": "yes"}, follow=True)

    assert messages_of(response) == [EXPIRES_INVALID]
    assert charges(customer) == []


def test_another_clients_service_is_a_404_and_nothing_is_charged(logged_in, tariff):
    stranger = ClientFactory()
    credit(stranger, "100.00")
    theirs = started(stranger, tariff)

    assert logged_in.get(renew_url(theirs), {"periods": "1", "expires": "2026-02-28T10:00:00+00:00"}).status_code == 404
    response = logged_in.post(renew_url(theirs), {"periods": "1", "expires": "2026-02-28T10:00:00+00:00", "confirm": "yes"})

    assert response.status_code == 404
    assert charges(stranger) == []


def test_a_visitor_is_sent_to_log_in(client, active):
    response = client.post(renew_url(active), {"periods": "1", "expires": "2026-02-28T10:00:00+00:00", "confirm": "yes"})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert LedgerEntry.objects.count() == 0


# The balance banner


@pytest.fixture
def due_soon(customer, tariff):
    """10.00 renewed on 25 February and 7.50 on 27 February (within 7 days of 20 February); 100.00 on 28 February is later."""
    started(customer, tariff, expires_at=utc(2026, 2, 25, 10))
    started(customer, tariff, expires_at=utc(2026, 2, 27, 23, 59), price=Decimal("7.50"))
    return started(customer, tariff, expires_at=utc(2026, 2, 28, 0, 0), price=Decimal("100.00"))


def test_the_banner_says_what_is_due_within_7_days_and_how_much_to_top_up(logged_in, customer, due_soon):
    credit(customer, "12.00")

    for response in (logged_in.get(reverse("client_area")), service_page(logged_in, due_soon)):
        assert Page(response).text("due-banner") == "Your balance does not cover 17.50 RUB due in the next 7 days: top up 5.50 RUB."
        assert '<a href="/account/balance/?amount=5.50">top up 5.50\xa0RUB</a>' in response.content.decode()


def test_no_banner_when_the_balance_covers_what_is_due(logged_in, customer, due_soon):
    credit(customer, "17.50")

    for response in (logged_in.get(reverse("client_area")), service_page(logged_in, due_soon)):
        assert "due-banner" not in Page(response).ids


def test_no_banner_for_services_that_do_not_renew_from_the_balance(logged_in, customer, tariff):
    started(customer, tariff, expires_at=utc(2026, 2, 25, 10), auto_renew=False)
    started(customer, tariff, expires_at=utc(2026, 2, 25, 10), status=ServiceStatus.SUSPENDED, suspend_reason=SuspendReason.ABUSE)

    assert "due-banner" not in Page(logged_in.get(reverse("client_area"))).ids


def test_the_banner_is_in_russian_pages_too_with_russian_amounts(logged_in, customer, due_soon):
    credit(customer, "12.00")

    response = logged_in.get("/ru" + reverse("client_area"))

    text = Page(response).text("due-banner")
    assert "17,50 RUB" in text and "5,50 RUB" in text
    assert 'href="/ru/account/balance/?amount=5.50"' in response.content.decode()


# Notifications


def notification(client, service, kind, day, **fields):
    return Notification.objects.create(
        client=client, service=service, kind=kind, key=f"{kind}:{service.pk if service else '-'}:{day}", day=day, **fields
    )


def test_the_notifications_page_lists_the_clients_own_newest_first_with_kind_service_date_and_sent(logged_in, customer, active, clock):
    stranger = ClientFactory()
    notification(stranger, started(stranger, active.tariff, domain="other.example.com"), NotificationKind.DELETED, date(2026, 2, 19))
    clock.move_to(utc(2026, 2, 18, 0, 30))
    notification(customer, active, NotificationKind.LOW_BALANCE, date(2026, 2, 18), sent_at=utc(2026, 2, 18, 0, 31))
    clock.move_to(utc(2026, 2, 19, 0, 30))
    notification(customer, active, NotificationKind.EXPIRES, date(2026, 2, 19), error="SMTPServerDisconnected: down")
    clock.move_to(NOW)

    response = logged_in.get(reverse("notifications"))

    assert Page(response).table() == [
        ["Date", "About", "Service", "Email"],
        ["Feb. 19, 2026", "Expires without renewal", f"#{active.pk} bakery.example.com", "Not sent yet"],
        ["Feb. 18, 2026", "Low balance", f"#{active.pk} bakery.example.com", "Sent 02/18/2026 12:31 a.m."],
    ]
    page = response.content.decode()
    assert f'href="{reverse("service_detail", args=[active.pk])}"' in page
    assert "other.example.com" not in page and "SMTPServerDisconnected" not in page


def test_the_notifications_page_shows_25_a_page_in_a_fixed_number_of_queries(logged_in, customer, active, clock, django_assert_num_queries):
    kinds = list(NotificationKind)
    for number in range(30):
        clock.move_to(utc(2026, 1, 1 + number, 0, 30))
        notification(customer, active, kinds[number % len(kinds)], date(2026, 1, 1 + number))
    clock.move_to(NOW)

    # Session, user, client, count, page (with its services).
    with django_assert_num_queries(5):
        first = logged_in.get(reverse("notifications"))
    second = logged_in.get(reverse("notifications"), {"page": "2"})

    first_rows, second_rows = Page(first).table()[1:], Page(second).table()[1:]
    assert len(first_rows) == 25 and len(second_rows) == 5
    assert (first_rows[0][0], first_rows[-1][0]) == ("Jan. 30, 2026", "Jan. 6, 2026")
    assert [row[0] for row in second_rows] == ["Jan. 5, 2026", "Jan. 4, 2026", "Jan. 3, 2026", "Jan. 2, 2026", "Jan. 1, 2026"]
    assert [row[1] for row in second_rows] == ["Resumed", "Suspended for non-payment", "Expires without renewal", "Low balance", "Renewed"]


def test_the_notifications_page_with_a_junk_page_number_shows_the_first_page(logged_in, customer, active):
    notification(customer, active, NotificationKind.RENEWED, date(2026, 2, 20))

    for junk in ("abc", "-1", "99999999999999999999"):
        response = logged_in.get(reverse("notifications"), {"page": junk})
        assert response.status_code == 200
        assert len(Page(response).table()) == 2


def test_the_account_navigation_links_to_the_notifications(logged_in):
    response = logged_in.get(reverse("client_area"))

    assert f'<a href="{reverse("notifications")}">Notifications</a>' in response.content.decode()
    assert logged_in.get(reverse("notifications")).status_code == 200


def test_without_notifications_the_page_says_so(logged_in):
    assert "No notifications yet." in logged_in.get(reverse("notifications")).content.decode()
