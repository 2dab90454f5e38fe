"""API tokens in a browser: the client reaches the page from the Profile, makes a token whose secret is shown
once and works against the API, cannot make one with a wrong password, revokes one (after a "yes") so that
the API refuses it, and the Russian page fits a 375 px phone."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from billing.api.models import ApiToken
from billing.api.tokens import token_create, token_revoke
from tests.browser.helpers import PASSWORD, client_create, has_horizontal_scroll, screenshot

PHONE_375 = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True, "device_scale_factor": 1}


@pytest.fixture
def owner(live_server, settings):
    settings.API_TOKENS_PER_USER_MAX = 5
    return client_create(email="tokens@example.com")


def me(live_server, plaintext: str) -> requests.Response:
    return requests.get(f"{live_server.url}/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"}, timeout=10)


def create_form(page):
    return page.locator("#create-token form")


def test_a_token_made_from_the_profile_works_and_its_secret_is_shown_once(page, live_server, log_in_as, owner):
    log_in_as(page, owner)
    page.goto("/account/profile/")
    page.locator("#api-tokens a").click()
    expect(page).to_have_url(f"{live_server.url}/account/api-tokens/")
    expect(page.get_by_role("heading", level=1)).to_have_text("API tokens")

    form = create_form(page)
    form.get_by_label("Name").fill("Shop website")
    # Read is ticked by default; Write is added.
    expect(form.locator("input[name=scopes][value=read]")).to_be_checked()
    form.locator("input[name=scopes][value=write]").check()
    form.get_by_label("Expires").select_option("30")
    form.get_by_label("Your password").fill(PASSWORD)
    form.get_by_role("button", name="Create token").click()

    expect(page.locator("#new-token-heading")).to_have_text("Your new token “Shop website”")
    plaintext = page.locator("#new-token-value").inner_text()
    token = ApiToken.objects.get(user=owner.users.get())
    assert plaintext.startswith(f"{token.prefix}.") and len(plaintext) > len(token.prefix) + 20
    assert token.name == "Shop website" and token.scopes == ["read", "write"]
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    row = page.locator(f"#token-{token.pk}")
    expect(row.locator("td").nth(0)).to_have_text("Shop website")
    expect(row.locator("code")).to_have_text(f"{token.prefix}…")
    expect(row.locator(".status")).to_have_text("Live")
    expect(page.locator("#token-count")).to_have_text("You have 1 live token of 5 allowed.")

    answer = me(live_server, plaintext)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["user"] == "tokens@example.com"
    assert body["client_id"] == owner.pk
    assert body["token"] == "Shop website"
    assert body["scopes"] == ["read", "write"]

    # The secret was in that one answer only: the same page fetched again knows nothing of it.
    page.goto("/account/api-tokens/")
    expect(page.locator(f"#token-{token.pk}")).to_be_visible()
    expect(page.locator("#new-token-value")).to_have_count(0)
    html = page.content()
    assert plaintext not in html
    assert plaintext.split(".", 1)[1] not in html


def test_a_wrong_password_shows_the_error_and_makes_no_token(page, log_in_as, owner):
    log_in_as(page, owner)
    page.goto("/account/api-tokens/")
    before = ApiToken.objects.count()

    form = create_form(page)
    form.get_by_label("Name").fill("Shop website")
    form.locator("input[name=scopes][value=write]").check()
    form.get_by_label("Your password").fill("not-" + PASSWORD)
    form.get_by_role("button", name="Create token").click()

    expect(create_form(page).locator(".error")).to_have_text("That is not your password.")
    expect(page.locator("#new-token-value")).to_have_count(0)
    expect(page.locator("#tokens")).to_have_count(0)
    assert ApiToken.objects.count() == before
    # What was typed stays, except the password.
    expect(form.get_by_label("Name")).to_have_value("Shop website")
    expect(form.locator("input[name=scopes][value=write]")).to_be_checked()
    expect(form.get_by_label("Your password")).to_have_value("")


def test_a_revoked_token_is_shown_revoked_and_the_api_refuses_it(page, live_server, log_in_as, owner):
    token, plaintext = token_create(user=owner.users.get(), name="Backup script", scopes=["read"])
    assert me(live_server, plaintext).status_code == 200
    log_in_as(page, owner)
    page.goto("/account/api-tokens/")
    row = page.locator(f"#token-{token.pk}")

    # "No, keep it" changes nothing.
    row.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Revoke the token “Backup script”?")
    page.get_by_role("link", name="No, keep it").click()
    expect(row.locator(".status")).to_have_text("Live")
    token.refresh_from_db()
    assert token.revoked_at is None

    row.get_by_role("link", name="Revoke").click()
    page.locator("button[name=confirm]").click()

    expect(page).to_have_url(f"{live_server.url}/account/api-tokens/")
    expect(page.locator(".message.success")).to_have_text("The token “Backup script” is revoked: it no longer works.")
    expect(row.locator(".status")).to_have_text("Revoked")
    expect(row.get_by_role("link", name="Revoke")).to_have_count(0)
    expect(page.locator("#token-count")).to_have_text("You have 0 live tokens of 5 allowed.")
    token.refresh_from_db()
    assert token.revoked_at is not None
    answer = me(live_server, plaintext)
    assert answer.status_code == 401, answer.text


def test_the_russian_page_fits_a_375_px_phone_and_its_labels_keep_their_words_whole(new_page, log_in_as, owner):
    user = owner.users.get()
    token_create(user=user, name="Интернет-магазин: ежедневные выгрузки заказов", scopes=["read", "write", "secrets"])
    used, _ = token_create(user=user, name="Скрипт резервного копирования", scopes=["read"], expires_at=timezone.now() + timedelta(days=90))
    ApiToken.objects.filter(pk=used.pk).update(last_used_at=timezone.now())
    token_revoke(token=token_create(user=user, name="Старый", scopes=["read"])[0])
    page = new_page(**PHONE_375)
    log_in_as(page, owner)

    page.goto("/ru/account/api-tokens/")

    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("heading", level=1)).to_have_text("API-токены")
    expect(page.locator("#tokens tbody tr")).to_have_count(3)
    expect(page.locator("#tokens td[data-label='Последнее использование']").first).to_be_visible()
    assert not has_horizontal_scroll(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    # The header row is hidden on a phone (clipped to a pixel): the cards are the rows of the body.
    too_wide = page.locator("#tokens tbody").evaluate(
        """body => Array.from(body.querySelectorAll("*"))
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 || el.scrollWidth > el.clientWidth + 1)
            .map(el => el.outerHTML.slice(0, 80))"""
    )
    assert too_wide == []
    # Each cell's label (its ::before) is as wide as its longest word at least (give or take a pixel's rounding):
    # it wraps between words, never inside one.
    broken = page.locator("#tokens").evaluate(
        """table => {
            const probe = document.createElement("span");
            probe.style.cssText = "position: absolute; visibility: hidden; white-space: nowrap";
            document.body.append(probe);
            const broken = [];
            for (const td of table.querySelectorAll("td[data-label]")) {
                const label = getComputedStyle(td, "::before");
                probe.style.font = label.font;
                const room = parseFloat(label.width);
                for (const word of td.dataset.label.split(/\\s+/)) {
                    probe.textContent = word;
                    if (!(probe.getBoundingClientRect().width <= room + 1)) broken.push(`${word} (${room}px)`);
                }
            }
            probe.remove();
            return broken;
        }"""
    )
    assert broken == []
    page.locator("#tokens-heading").scroll_into_view_if_needed()
    screenshot(page, "phone-375-api-tokens-ru")
