"""The client's Profile page: billing details, the login email and the password."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from billing.choices import LedgerEntryKind
from billing.services import ledger_entry_add
from tests.billing.test_client_pages import PASSWORD
from tests.factories import UserFactory

URL = "/account/profile/"


def post(browser, form, **fields):
    return browser.post(URL, {"form": form, **{f"{form}-{name}": value for name, value in fields.items()}})


def errors(response, form, field):
    return response.context[form].errors.get(field, [])


def test_the_profile_is_in_the_navigation_at_its_address(logged_in):
    assert reverse("profile") == URL
    assert f'href="{URL}"' in logged_in.get(reverse("client_area")).content.decode()


def test_billing_details_are_saved_and_printed_on_the_next_documents_only(logged_in, customer):
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"))
    response = post(logged_in, "details", name="Ann's Bakery GmbH", email="books@example.com", address="5 Flour Lane", tax_id="DE123")
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.name, customer.email, customer.address, customer.tax_id) == (
        "Ann's Bakery GmbH",
        "books@example.com",
        "5 Flour Lane",
        "DE123",
    )
    ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal("10.00"))
    first, latest = customer.documents.order_by("pk")
    assert first.buyer["name"] == "Ann's Bakery" and latest.buyer["name"] == "Ann's Bakery GmbH"
    assert latest.buyer["address"] == "5 Flour Lane" and latest.buyer["tax_id"] == "DE123"


def test_billing_details_errors_are_shown_not_raised(logged_in, customer):
    response = post(logged_in, "details", name="", email="not an email", address="x" * 5000, tax_id="y" * 51)
    assert response.status_code == 200
    assert errors(response, "details", "name") and errors(response, "details", "email") and errors(response, "details", "tax_id")
    customer.refresh_from_db()
    assert customer.name == "Ann's Bakery"


def test_the_email_change_moves_the_login_and_the_contact_email_with_the_password(client, logged_in, user, customer):
    response = post(logged_in, "email", email="Ann.New@Example.com", password=PASSWORD)
    assert response.status_code == 302
    user.refresh_from_db()
    customer.refresh_from_db()
    assert (user.username, user.email, customer.email) == ("ann.new@example.com", "ann.new@example.com", "ann.new@example.com")
    logged_in.logout()
    assert client.post(reverse("login"), {"username": "ANN.NEW@example.com", "password": PASSWORD}).status_code == 302


def test_the_email_change_needs_the_current_password_and_a_free_email(logged_in, user):
    UserFactory(username="bob@example.com", email="bob@example.com")
    wrong = post(logged_in, "email", email="new@example.com", password="not-it")
    assert wrong.status_code == 200 and errors(wrong, "email", "password") == ["That is not your password."]
    taken = post(logged_in, "email", email="BOB@example.com", password=PASSWORD)
    assert taken.status_code == 200 and errors(taken, "email", "email")
    too_long = post(logged_in, "email", email="a" * 150 + "@example.com", password=PASSWORD)
    assert too_long.status_code == 200 and errors(too_long, "email", "email")
    user.refresh_from_db()
    assert user.username == "ann@example.com"


def test_the_password_change_keeps_the_session(logged_in, user):
    new = "a-much-longer-secret-42"
    response = post(logged_in, "password", old_password=PASSWORD, new_password1=new, new_password2=new)
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert logged_in.get(URL).status_code == 200  # still logged in


@pytest.mark.parametrize(
    "fields",
    [
        {"old_password": "wrong", "new_password1": "a-much-longer-secret-42", "new_password2": "a-much-longer-secret-42"},
        {"old_password": PASSWORD, "new_password1": "a-much-longer-secret-42", "new_password2": "another-one-entirely-7"},
        {"old_password": PASSWORD, "new_password1": "123", "new_password2": "123"},
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(logged_in, user, fields):
    response = post(logged_in, "password", **fields)
    assert response.status_code == 200 and response.context["password"].errors
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_hostile_posts_show_the_page(logged_in):
    for data in ({}, {"form": "nonsense"}, {"form": "email", "email-email": "\x00@x"}, {"form": ["details", "email"]}):
        assert logged_in.post(URL, data).status_code == 200
    assert get_user_model().objects.filter(username="ann@example.com").exists()


def test_a_visitor_is_sent_to_log_in(client, db):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_page_opens_in_russian(logged_in):
    assert logged_in.get("/ru" + URL).status_code == 200
