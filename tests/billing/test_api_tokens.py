"""API tokens: the service (hashed secret, prefix lookup, what no longer authenticates), the client's page and the admin."""

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.test import Client as BrowserClient
from django.urls import reverse

from billing.api.models import ApiToken
from billing.api.tokens import token_authenticate, token_create, token_revoke
from tests.factories import StaffUserFactory, UserFactory

PASSWORD = "correct-horse-battery"  # UserFactory's
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def other(db):
    return UserFactory(username="bob@example.com")


# The service


def test_a_token_is_its_prefix_and_a_secret_of_which_only_the_sha256_is_stored(user):
    token, plaintext = token_create(user=user, name="Shop site", scopes=["read"])

    prefix, secret = plaintext.split(".")
    stored = ApiToken.objects.get()
    assert stored.pk == token.pk and stored.prefix == prefix and len(prefix) == 12
    assert len(secret) == 43  # 32 random bytes, URL-safe base64
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {stored.name, stored.prefix, stored.secret_hash, str(stored.scopes)}
    assert token_authenticate(plaintext) == stored


def test_a_token_is_found_by_its_prefix_and_needs_its_own_secret(user):
    _, first_plaintext = token_create(user=user, name="One", scopes=["read"])
    second, second_plaintext = token_create(user=user, name="Two", scopes=["read"])
    first_secret = first_plaintext.split(".")[1]

    assert token_authenticate(second_plaintext) == second
    assert token_authenticate(f"{second.prefix}.{first_secret}") is None  # another token's secret
    assert token_authenticate(first_plaintext[:-1] + ("A" if first_plaintext[-1] != "A" else "B")) is None  # wrong secret
    assert token_authenticate(f"000000000000.{first_secret}") is None  # no such prefix


@pytest.mark.parametrize("plaintext", ["", ".", "abc", "abc.", ".abc", "a" * 17 + ".secret", "\x00.\x00"])
def test_malformed_tokens_authenticate_nobody(user, plaintext):
    token_create(user=user, name="Shop site", scopes=["read"])

    assert token_authenticate(plaintext) is None


def test_a_revoked_token_no_longer_authenticates_and_its_revocation_is_recorded(user):
    token, plaintext = token_create(user=user, name="Shop site", scopes=["read"])

    with time_machine.travel(START, tick=False):
        token_revoke(token=token)

    assert ApiToken.objects.get().revoked_at == START
    assert token_authenticate(plaintext) is None
    token_revoke(token=token)  # revoking again keeps the first time
    assert ApiToken.objects.get().revoked_at == START


def test_an_expired_token_no_longer_authenticates(user):
    with time_machine.travel(START, tick=False):
        _, plaintext = token_create(user=user, name="Shop site", scopes=["read"], expires_at=START + timedelta(days=30))
    with time_machine.travel(START + timedelta(days=30) - timedelta(seconds=1), tick=False):
        assert token_authenticate(plaintext) is not None
    with time_machine.travel(START + timedelta(days=30), tick=False):
        assert token_authenticate(plaintext) is None


def test_the_token_of_a_deactivated_user_no_longer_authenticates(user):
    _, plaintext = token_create(user=user, name="Shop site", scopes=["read"])
    user.is_active = False
    user.save()

    assert token_authenticate(plaintext) is None


def test_last_used_is_written_at_most_once_a_minute(user):
    with time_machine.travel(START, tick=False) as traveller:
        _, plaintext = token_create(user=user, name="Shop site", scopes=["read"])
        assert ApiToken.objects.get().last_used_at is None

        token_authenticate(plaintext)
        assert ApiToken.objects.get().last_used_at == START
        traveller.shift(59)
        token_authenticate(plaintext)
        assert ApiToken.objects.get().last_used_at == START
        traveller.shift(1)
        token_authenticate(plaintext)
        assert ApiToken.objects.get().last_used_at == START + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("scopes", "stored"),
    [(["read"], ["read"]), (["write"], ["read", "write"]), (["secrets", "read", "secrets"], ["read", "secrets"]), ([], ["read"])],
)
def test_scopes_are_stored_in_their_order_with_read_implied(user, scopes, stored):
    token_create(user=user, name="Shop site", scopes=scopes)

    assert ApiToken.objects.get().scopes == stored


def test_an_unknown_scope_is_refused_and_nothing_is_made(user):
    with pytest.raises(ValidationError) as refused:
        token_create(user=user, name="Shop site", scopes=["read", "admin"])

    assert refused.value.messages == ["Unknown scope: admin."]
    assert not ApiToken.objects.exists()


def test_an_expiry_in_the_past_is_refused_and_nothing_is_made(user):
    with time_machine.travel(START, tick=False), pytest.raises(ValidationError) as refused:
        token_create(user=user, name="Shop site", scopes=["read"], expires_at=START)

    assert refused.value.message_dict == {"expires_at": ["The expiry must be in the future."]}
    assert not ApiToken.objects.exists()


def test_live_tokens_per_user_are_limited_revoked_and_expired_ones_not_counted(user, other, settings):
    settings.API_TOKENS_PER_USER_MAX = 2
    with time_machine.travel(START, tick=False) as clock:
        token_create(user=user, name="Expiring", scopes=["read"], expires_at=START + timedelta(days=1))
        second, _ = token_create(user=user, name="Second", scopes=["read"])

        with pytest.raises(ValidationError) as refused:
            token_create(user=user, name="Third", scopes=["read"])

        assert refused.value.messages == [
            "This user already has 2 live API tokens, the most allowed: revoke one that is no longer used first."
        ]
        assert user.api_tokens.count() == 2
        token_create(user=other, name="Bob's", scopes=["read"])  # the limit is per user
        clock.shift(timedelta(days=1))
        token_create(user=user, name="After the expiry", scopes=["read"])
        token_revoke(token=second)
        token_create(user=user, name="After the revocation", scopes=["read"])
    assert user.api_tokens.count() == 4


# The client's page


def create(browser, **data):
    return browser.post(reverse("api_tokens"), {"name": "Shop site", "scopes": ["read"], "expires": "90", "password": PASSWORD, **data})


def test_the_tokens_page_needs_a_login_and_is_linked_from_the_profile(client, logged_in):
    assert BrowserClient().get(reverse("api_tokens")).status_code == 302
    assert reverse("api_tokens") in logged_in.get(reverse("profile")).content.decode()
    assert logged_in.get(reverse("api_tokens")).status_code == 200


def test_a_new_token_is_shown_once_and_then_only_by_its_prefix(logged_in, user):
    now = datetime.now(tz=UTC)
    with time_machine.travel(now, tick=False):
        response = create(logged_in, name="Shop site", scopes=["read", "write"], expires="30")

    assert response.status_code == 200
    token = ApiToken.objects.get()
    plaintext = response.context["plaintext"]
    assert plaintext.startswith(token.prefix + ".")
    page = response.content.decode()
    assert f'<code class="token-once" id="new-token-value">{plaintext}</code>' in page
    assert "it is shown only this once" in page
    assert (token.user, token.name, token.scopes, token.expires_at) == (user, "Shop site", ["read", "write"], now + timedelta(days=30))
    assert token_authenticate(plaintext) == token

    again = logged_in.get(reverse("api_tokens")).content.decode()
    assert plaintext.split(".")[1] not in again
    assert f"<code>{token.prefix}…</code>" in again and "Shop site" in again and "Read, Write" in again


def test_a_token_that_never_expires(logged_in):
    create(logged_in, expires="never", scopes=["secrets"])

    token = ApiToken.objects.get()
    assert token.expires_at is None and token.scopes == ["read", "secrets"]


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "   "}, "name", "This field is required."),
        ({"name": "x" * 101}, "name", "Ensure this value has at most 100 characters (it has 101)."),
        ({"name": "a\x00b"}, "name", "Null characters are not allowed."),
        ({"scopes": ["read", "admin"]}, "scopes", "Select a valid choice. admin is not one of the available choices."),
        ({"scopes": []}, "scopes", "This field is required."),
        ({"expires": "-5"}, "expires", "Select a valid choice. -5 is not one of the available choices."),
        ({"expires": "7"}, "expires", "Select a valid choice. 7 is not one of the available choices."),
        ({"password": "not-it"}, "password", "That is not your password."),
    ],
)
def test_bad_input_shows_the_error_and_makes_nothing(logged_in, data, field, error):
    response = create(logged_in, **data)

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [error]
    assert "plaintext" not in response.context or response.context["plaintext"] is None
    assert not ApiToken.objects.exists()


def test_the_limit_of_live_tokens_is_said_and_nothing_more_is_made(logged_in, user, settings):
    settings.API_TOKENS_PER_USER_MAX = 1
    token_create(user=user, name="First", scopes=["read"])

    response = create(logged_in, name="Second")

    assert response.context["form"].non_field_errors() == [
        "This user already has 1 live API tokens, the most allowed: revoke one that is no longer used first."
    ]
    assert response.context["plaintext"] is None
    assert list(user.api_tokens.values_list("name", flat=True)) == ["First"]


def test_revoking_asks_first_then_revokes(logged_in, user):
    token, plaintext = token_create(user=user, name="Shop site", scopes=["read"])
    url = reverse("api_token_revoke", args=[token.pk])

    confirm = logged_in.get(url)
    assert confirm.status_code == 200 and "Yes, revoke it" in confirm.content.decode()
    assert logged_in.post(url).status_code == 200  # no "yes": the question again
    assert ApiToken.objects.get().revoked_at is None

    now = datetime.now(tz=UTC)
    with time_machine.travel(now, tick=False):
        done = logged_in.post(url, {"confirm": "yes"}, follow=True)

    assert done.redirect_chain == [(reverse("api_tokens"), 302)]
    assert "The token “Shop site” is revoked: it no longer works." in done.content.decode()
    assert ApiToken.objects.get().revoked_at == now
    assert token_authenticate(plaintext) is None
    assert 'status-revoked">Revoked<' in done.content.decode()


def test_revoking_needs_the_csrf_token(user, customer):
    token, _ = token_create(user=user, name="Shop site", scopes=["read"])
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(user)

    assert browser.post(reverse("api_token_revoke", args=[token.pk]), {"confirm": "yes"}).status_code == 403
    assert ApiToken.objects.get().revoked_at is None


def test_another_users_token_is_not_listed_and_cannot_be_revoked(logged_in, other):
    theirs, _ = token_create(user=other, name="Bob's integration", scopes=["read"])
    url = reverse("api_token_revoke", args=[theirs.pk])

    assert "Bob's integration" not in logged_in.get(reverse("api_tokens")).content.decode()
    assert logged_in.get(url).status_code == 404
    assert logged_in.post(url, {"confirm": "yes"}).status_code == 404
    assert logged_in.post(reverse("api_token_revoke", args=[999_999]), {"confirm": "yes"}).status_code == 404
    assert ApiToken.objects.get().revoked_at is None


# The admin


def test_staff_make_a_token_for_a_user_and_see_its_secret_once(admin_client, user):
    data = {
        "user": user.pk,
        "name": "Reseller sync",
        "scopes": ["read", "write"],
        "expires_at_0": "2099-01-31",
        "expires_at_1": "10:00:00",
    }

    response = admin_client.post(reverse("admin:billing_apitoken_add"), data, follow=True)

    token = ApiToken.objects.get()
    shown = [str(message) for message in response.context["messages"]]
    notice = next(text for text in shown if "shown only this once" in text)
    plaintext = re.fullmatch(
        r'Copy the token of ann@example.com now: it is shown only this once. <code class="api-token">(.+)</code>', notice
    )[1]
    assert plaintext.startswith(token.prefix + ".")
    assert token_authenticate(plaintext) == token
    assert (token.user, token.name, token.scopes) == (user, "Reseller sync", ["read", "write"])
    change_page = admin_client.get(reverse("admin:billing_apitoken_change", args=[token.pk])).content.decode()
    assert token.prefix in change_page
    assert plaintext.split(".")[1] not in change_page and token.secret_hash not in change_page


def test_staff_cannot_make_someone_elses_token_that_reads_panel_passwords(admin_client, user):
    """The admin never shows a panel password to staff; a token staff made for a client, and saw, must not either."""
    data = {"user": user.pk, "name": "Reseller sync", "scopes": ["read", "secrets"], "expires_at_0": "", "expires_at_1": ""}

    response = admin_client.post(reverse("admin:billing_apitoken_add"), data)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["scopes"]
    assert not ApiToken.objects.exists()


def test_the_admin_refuses_a_past_expiry_and_an_unknown_scope(admin_client, user):
    past = {"user": user.pk, "name": "Old", "scopes": ["read"], "expires_at_0": "2001-01-01", "expires_at_1": "00:00:00"}
    unknown = {"user": user.pk, "name": "Odd", "scopes": ["admin"]}

    refused_past = admin_client.post(reverse("admin:billing_apitoken_add"), past)
    refused_scope = admin_client.post(reverse("admin:billing_apitoken_add"), unknown)

    assert refused_past.context["adminform"].form.errors == {"expires_at": ["The expiry must be in the future."]}
    assert refused_scope.context["adminform"].form.errors == {
        "scopes": ["Select a valid choice. admin is not one of the available choices."]
    }
    assert not ApiToken.objects.exists()


def test_a_made_token_cannot_be_widened_in_the_admin(admin_client, user):
    token, _ = token_create(user=user, name="Reader", scopes=["read"])

    admin_client.post(reverse("admin:billing_apitoken_change", args=[token.pk]), {"name": "Writer", "scopes": ["write", "secrets"]})

    token.refresh_from_db()
    assert (token.name, token.scopes) == ("Reader", ["read"])


def test_staff_revoke_tokens_with_the_list_action_and_the_button(admin_client, user):
    first, first_plaintext = token_create(user=user, name="One", scopes=["read"])
    second, second_plaintext = token_create(user=user, name="Two", scopes=["read"])
    kept, kept_plaintext = token_create(user=user, name="Kept", scopes=["read"])

    listed = admin_client.post(
        reverse("admin:billing_apitoken_changelist"), {"action": "revoke", "_selected_action": [first.pk]}, follow=True
    )
    admin_client.post(reverse("admin:billing_apitoken_revoke", args=[second.pk]))

    assert "1 API tokens revoked: they no longer authenticate." in [str(message) for message in listed.context["messages"]]
    assert token_authenticate(first_plaintext) is None and token_authenticate(second_plaintext) is None
    assert token_authenticate(kept_plaintext) == kept
    statuses = admin_client.get(reverse("admin:billing_apitoken_changelist") + "?status=revoked").context["cl"].result_list
    assert sorted(token.name for token in statuses) == ["One", "Two"]


def test_staff_without_the_change_permission_cannot_revoke(client, user):
    token, _ = token_create(user=user, name="One", scopes=["read"])
    viewer = StaffUserFactory(username="viewer@example.com", is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client.force_login(viewer)

    assert client.post(reverse("admin:billing_apitoken_revoke", args=[token.pk])).status_code == 403
    assert ApiToken.objects.get().revoked_at is None
