"""One error shape for every API answer that is not a success: {"code", "message", "fields"}.

The services' own `ValidationError`s become 400s with their messages, translated by the request's
language (LocaleMiddleware reads Accept-Language), and their codes.
"""

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions
from rest_framework.fields import get_error_detail
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(exceptions.APIException):
    """An error with its own status and stable code, e.g. 409 request_in_progress."""

    def __init__(self, message, *, code: str, status: int):
        super().__init__(message, code)
        self.status_code = status


def _django_validation_error(error: DjangoValidationError) -> exceptions.ValidationError:
    """DRF's own conversion, with Django's "__all__" under DRF's name for errors of no one field."""
    detail = get_error_detail(error)
    if isinstance(detail, dict) and NON_FIELD_ERRORS in detail:
        detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
    return exceptions.ValidationError(detail)


def _first(details):
    """The first ErrorDetail in a nested structure of lists and dicts."""
    if isinstance(details, dict):
        details = list(details.values())
    if isinstance(details, list):
        for item in details:
            found = _first(item)
            if found is not None:
                return found
        return None
    return details


def _flatten(details, prefix="") -> dict[str, list[str]]:
    """Field errors as {"field": [messages]}, nested fields joined with dots."""
    if isinstance(details, dict):
        flat = {}
        for key, value in details.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(details, list) and any(isinstance(item, (dict, list)) for item in details):
        flat = {}
        for index, value in enumerate(details):
            flat.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = [str(item) for item in (details if isinstance(details, list) else [details])]
    return {prefix: messages} if messages else {}


def exception_handler(error, context):
    if isinstance(error, DjangoValidationError):
        error = _django_validation_error(error)
    elif isinstance(error, Http404):
        error = exceptions.NotFound()
    elif isinstance(error, DjangoPermissionDenied):
        error = exceptions.PermissionDenied()
    response = drf_exception_handler(error, context)
    if response is None:
        return None
    detail = error.detail
    if isinstance(error, exceptions.ValidationError):
        fields = _flatten(detail if isinstance(detail, dict) else {api_settings.NON_FIELD_ERRORS_KEY: detail})
        general = fields.pop(api_settings.NON_FIELD_ERRORS_KEY, None)
        # The code of the error of no one field when there is one (the service's refusal), else of the first field's.
        first = _first(detail.get(api_settings.NON_FIELD_ERRORS_KEY) or detail if isinstance(detail, dict) else detail)
        code = getattr(first, "code", None) or "invalid"
        message = general[0] if general else _("Some fields are not valid.")
    else:
        first = _first(detail)
        fields = {}
        code = getattr(first, "code", None) or error.default_code
        message = str(first) if first is not None else str(error.default_detail)
    return Response({"code": code, "message": message, "fields": fields}, status=response.status_code, headers=_headers(response))


def _headers(response) -> dict:
    return {name: value for name, value in response.items() if name in ("Retry-After", "WWW-Authenticate", "Allow")}


class UnknownPath(APIView):
    """Any /api/ address that names nothing: a 404 in the error shape, whatever the method or credentials."""

    schema = None
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise exceptions.NotFound()

    options = http_method_not_allowed


def server_error(request):
    """handler500: an API client gets the error shape, never an HTML page (and the pages keep theirs)."""
    if request.path.startswith("/api/"):
        message = _("Something went wrong on our side; the error was recorded. Try again later.")
        return JsonResponse({"code": "server_error", "message": message, "fields": {}}, status=500)
    return defaults.server_error(request)
