"""The tariff's username template: its macros, how it expands, and when it cannot work.

A valid ISPmanager login is lower-case latin letters, digits, `_`, `-` and `.`, starts with a
letter or `_`, and has at most 32 characters.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MAX_LOGIN_LENGTH = 32
MACROS = ("@USERNAME@", "@DOMAIN@", "@ID@", "@ACCOUNT_ID@")
# Macros whose value is a number: a template starting with one would give a login
# starting with a digit.
NUMERIC_MACROS = ("@ID@", "@ACCOUNT_ID@")

# Whole-string patterns are used with fullmatch: `$` also matches before a trailing newline.
LOGIN_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_TOKEN_RE = re.compile(r"@[A-Z_]+@")
_LITERAL_RE = re.compile(r"[A-Za-z0-9_.-]")
_NOT_LOGIN_CHARS = re.compile(r"[^a-z0-9_.-]")


def username_template_errors(template: str) -> list[str]:
    """Everything that stops `template` from always giving a valid login; empty when it works."""
    if not template:
        return [_("Enter a template, for example user@ID@.")]
    errors = []
    parts = _TOKEN_RE.split(template)
    tokens = _TOKEN_RE.findall(template)
    unknown = sorted({token for token in tokens if token not in MACROS})
    if unknown:
        errors.append(_("Unknown macro %(macros)s: use only %(allowed)s.") % {"macros": ", ".join(unknown), "allowed": ", ".join(MACROS)})
    bad = sorted({char for part in parts for char in part if not _LITERAL_RE.fullmatch(char)})
    if bad:
        errors.append(
            _("The characters %(chars)s cannot be part of a login: use latin letters, digits, _, - and .")
            % {"chars": " ".join(repr(char) for char in bad)}
        )
    if not tokens:
        errors.append(_("Add a macro such as @ID@ so that every service gets its own login."))
    first_literal = parts[0]
    starts_with_number = not first_literal and tokens and tokens[0] in NUMERIC_MACROS
    if (first_literal and not re.match(r"[A-Za-z_]", first_literal)) or starts_with_number:
        errors.append(_("A login must start with a latin letter or _: put a prefix first, as in user@ID@."))
    # Every macro gives at least one character; the login must still leave room for them.
    if len("".join(parts)) + len(tokens) > MAX_LOGIN_LENGTH:
        errors.append(_("The template is too long: a login has at most %(max)d characters.") % {"max": MAX_LOGIN_LENGTH})
    return errors


def validate_username_template(template: str) -> None:
    errors = username_template_errors(template)
    if errors:
        raise ValidationError(errors)


def _clean_value(value: str) -> str:
    """A macro's value as login characters: lower-case, anything else becomes `_`."""
    return _NOT_LOGIN_CHARS.sub("_", value.lower())


def _ascii_domain(domain: str) -> str:
    """An internationalized domain in its xn-- form, so that it survives as login characters."""
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def expand_username_template(template: str, *, username: str, domain: str, service_id: int, account_id: int) -> str:
    """The login `template` gives for a service, e.g. `user@ID@` for service 117 -> `user117`."""
    values = {
        "@USERNAME@": _clean_value(username),
        "@DOMAIN@": _clean_value(_ascii_domain(domain)),
        "@ID@": str(service_id),
        "@ACCOUNT_ID@": str(account_id),
    }
    login = _TOKEN_RE.sub(lambda match: values[match.group(0)], template).lower()
    if not re.match(r"[a-z_]", login):
        login = f"_{login}"
    return login[:MAX_LOGIN_LENGTH]
