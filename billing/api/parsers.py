"""The API's JSON parser: input that Python's json module would turn into a server error is a 400 parse_error instead."""

import codecs
import json
import math

from django.utils.translation import gettext_lazy as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 reads as infinity, which no id or amount can hold (an int() of it raises OverflowError)
        raise ValueError(f"Out of range float values are not JSON compliant: {text!r}")
    return number


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        decoded = codecs.getreader(parsers.get_encoding(parser_context or {}))(stream)
        try:
            return json.load(decoded, parse_constant=strict_constant, parse_float=_finite_float)
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from None
        except RecursionError:  # arrays or objects nested tens of thousands deep
            raise ParseError(_("JSON parse error - the data is nested too deeply.")) from None
