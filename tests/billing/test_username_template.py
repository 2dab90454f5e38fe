import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from billing.username_template import (
    LOGIN_RE,
    MACROS,
    expand_username_template,
    username_template_errors,
    validate_username_template,
)


def expand(template, *, username="ivan@example.com", domain="example.com", service_id=117, account_id=42):
    return expand_username_template(template, username=username, domain=domain, service_id=service_id, account_id=account_id)


def test_the_seeds_example_user_id_for_service_117_gives_user117():
    assert expand("user@ID@") == "user117"


@pytest.mark.parametrize(
    ("template", "login"),
    [
        ("c@ACCOUNT_ID@s@ID@", "c42s117"),
        ("@DOMAIN@", "example.com"),
        ("@USERNAME@", "ivan_example.com"),
        ("Web_@ID@", "web_117"),
    ],
)
def test_each_macro_expands_to_a_valid_login(template, login):
    assert expand(template) == login


def test_domains_are_lower_cased_and_internationalized_domains_become_ascii():
    assert expand("@DOMAIN@", domain="Shop-Example.COM") == "shop-example.com"
    assert expand("@DOMAIN@", domain="пример.рф") == "xn--e1afmkfd.xn--p1ai"


def test_a_value_that_would_start_with_a_digit_is_prefixed():
    assert expand("@DOMAIN@", domain="1cloud.ru") == "_1cloud.ru"


def test_a_long_expansion_is_cut_to_32_characters():
    login = expand("site_@DOMAIN@", domain="a-very-long-domain-name-for-a-shop.example.com")
    assert len(login) == 32
    assert LOGIN_RE.fullmatch(login)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "Enter a template"),
        ("user@FOO@", "Unknown macro @FOO@"),
        ("@ID@", "must start with a latin letter"),
        ("@ACCOUNT_ID@x", "must start with a latin letter"),
        ("1user@ID@", "must start with a latin letter"),
        ("user @ID@", "cannot be part of a login"),
        ("клиент@ID@", "cannot be part of a login"),
        ("hosting", "Add a macro"),
        ("u" * 32 + "@ID@", "too long"),
    ],
)
def test_a_template_that_cannot_give_a_valid_login_is_refused_with_the_reason(template, message):
    with pytest.raises(ValidationError) as refused:
        validate_username_template(template)
    assert any(message in text for text in refused.value.messages)


def test_the_default_template_is_valid():
    assert username_template_errors("user@ID@") == []


login_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
literal = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_.-", max_size=12)


@given(
    prefix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8),
    parts=st.lists(st.tuples(st.sampled_from(MACROS), literal), min_size=1, max_size=4),
    username=login_text,
    domain=login_text,
    service_id=st.integers(min_value=1, max_value=10**12),
    account_id=st.integers(min_value=1, max_value=10**12),
)
def test_every_template_that_passes_validation_gives_a_valid_login(prefix, parts, username, domain, service_id, account_id):
    template = prefix + "".join(macro + text for macro, text in parts)
    if username_template_errors(template):
        return
    login = expand_username_template(template, username=username, domain=domain, service_id=service_id, account_id=account_id)
    assert LOGIN_RE.fullmatch(login), (template, login)
