"""Texts stored in the database and read later by someone else, in that reader's language.

A stored text is an English msgid (marked with `gettext_noop` where it is written) and its
parameters; it is translated when it is shown, not when it is written. A parameter may itself be a
stored text (a reason inside a message). Text that is nobody's msgid (a panel's own error, what staff
typed) is kept verbatim. Rows written before texts were stored this way hold plain text, which reads
back as verbatim.
"""

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import models
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext

from billing.money import money_format

_JSON_START = '{"msgid"'


@dataclass(frozen=True)
class Money:
    """An amount inside a stored text: written in the reader's format (en 1,000.00 RUB, ru 1 000,00 RUB)."""

    amount: Decimal
    currency: str = ""

    def render(self) -> str:
        return money_format(self.amount, self.currency)


@dataclass(frozen=True)
class Quantity:
    """A count inside a stored text, grouped in the reader's format (en 5,120, ru 5 120); ids are not quantities."""

    value: int

    def render(self) -> str:
        return number_format(self.value, force_grouping=True)


@dataclass(frozen=True)
class Day:
    """A calendar date inside a stored text, in the reader's format (en Feb. 28, 2026, ru 28 февраля 2026)."""

    value: date

    def render(self) -> str:
        return date_format(self.value)


# Parameters written in the reader's language when the text is rendered.
_RENDERED = (Money, Quantity, Day)

_PARAM_TYPES = {
    "money": lambda data: Money(Decimal(data["money"]), data.get("currency", "")),
    "quantity": lambda data: Quantity(data["quantity"]),
    "day": lambda data: Day(date.fromisoformat(data["day"])),
}


@dataclass(frozen=True)
class StoredText:
    msgid: str = ""
    params: dict = field(default_factory=dict)
    verbatim: str = ""

    @classmethod
    def of(cls, value) -> "StoredText":
        """A StoredText from what a caller passed: a StoredText, or plain text kept verbatim."""
        if isinstance(value, StoredText):
            return value
        return cls(verbatim="" if value is None else str(value))

    def render(self) -> str:
        """The text in the active language."""
        if not self.msgid:
            return self.verbatim
        params = {key: value.render() if isinstance(value, (StoredText, *_RENDERED)) else value for key, value in self.params.items()}
        translated = gettext(self.msgid)
        try:
            return translated % params if params else translated
        except (KeyError, TypeError, ValueError):
            # A translation that does not fit its parameters must not break the page.
            return self.msgid % params if params else self.msgid

    __str__ = render

    def __bool__(self):
        return bool(self.msgid or self.verbatim)

    def __eq__(self, other):
        if isinstance(other, str):
            return self.render() == other
        if isinstance(other, StoredText):
            return (self.msgid, self.params, self.verbatim) == (other.msgid, other.params, other.verbatim)
        return NotImplemented

    def __hash__(self):
        return hash(self.render())  # equal to the str it equals

    def __contains__(self, part: str) -> bool:
        return part in self.render()

    def to_json(self):
        if not self.msgid:
            # Verbatim text that looks like a stored msgid is wrapped, so that it reads back verbatim.
            return _param_to_json(self) if self.verbatim.startswith(_JSON_START) else self.verbatim
        return {"msgid": self.msgid, "params": {key: _param_to_json(value) for key, value in self.params.items()}}

    @classmethod
    def from_json(cls, data) -> "StoredText":
        if isinstance(data, dict) and "msgid" in data:
            return cls(msgid=data["msgid"], params={key: _param_from_json(value) for key, value in data.get("params", {}).items()})
        return cls(verbatim="" if data is None else str(data))


def _param_to_json(value):
    if isinstance(value, StoredText):
        return value.to_json() if value.msgid else {"msgid": "%(text)s", "params": {"text": value.verbatim}}
    if isinstance(value, Money):
        return {"money": str(value.amount), "currency": value.currency}
    if isinstance(value, Quantity):
        return {"quantity": value.value}
    if isinstance(value, Day):
        return {"day": value.value.isoformat()}
    return value


def _param_from_json(value):
    if not isinstance(value, dict):
        return value
    kind = next((name for name in _PARAM_TYPES if name in value), None)
    return _PARAM_TYPES[kind](value) if kind else StoredText.from_json(value)


class StoredTextField(models.TextField):
    """A text column holding a StoredText: JSON for a msgid and its parameters, plain text otherwise."""

    def from_db_value(self, value, expression, connection):
        return self.to_python(value)

    def to_python(self, value):
        if value is None or isinstance(value, StoredText):
            return value if value is not None else StoredText()
        if isinstance(value, str) and value.startswith(_JSON_START):
            try:
                return StoredText.from_json(json.loads(value))
            except ValueError:
                pass
        return StoredText.of(value)

    def get_prep_value(self, value):
        value = StoredText.of(value)
        data = value.to_json()
        return json.dumps(data, ensure_ascii=False, sort_keys=True) if isinstance(data, dict) else data

    def value_to_string(self, obj):
        return self.get_prep_value(self.value_from_object(obj))
