"""Middleware of the billing app."""

import re

from django.http import HttpResponseBadRequest
from django.utils import translation
from django.utils.cache import add_never_cache_headers
from django.utils.translation import get_language_from_path
from django.utils.translation import gettext as _

# RFC 9110 §5.5: a header value holding NUL, CR, LF or another control character is invalid and dangerous.
_INVALID_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class InvalidHeadersMiddleware:
    """Refuse a request whose headers hold control characters, as gunicorn does, under any server.

    Without it, runserver and other servers pass them on, and a NUL in the User-Agent of a failed login
    is a server error on PostgreSQL when the login limits record it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for name, value in request.META.items():
            if name.startswith("HTTP_") and isinstance(value, str) and _INVALID_HEADER_VALUE.search(value):
                return HttpResponseBadRequest(_("A header of this request holds control characters."))
        return self.get_response(request)


class ApiLanguageMiddleware:
    """The API speaks the language of the request's Accept-Language (or of the site's language cookie).

    LocaleMiddleware gives every address without a language prefix the default language, since the
    pages' prefix (/ru/) chooses theirs; the API's addresses have none.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/"):
            request.LANGUAGE_CODE = translation.get_language_from_request(request)
            translation.activate(request.LANGUAGE_CODE)
        return self.get_response(request)


# The client area (balances, payments, panel passwords), the login and password pages, and the API.
PRIVATE_PREFIXES = ("/account/", "/accounts/", "/api/v1/")


class PrivatePagesNoStoreMiddleware:
    """Tell browsers and proxies to keep no copy of a private page (Cache-Control: no-store).

    By address rather than per view, so that a page added to the client area later is covered too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        path = request.path_info
        language = get_language_from_path(path)
        if language:
            path = path.removeprefix(f"/{language}")
        if path.startswith(PRIVATE_PREFIXES):
            add_never_cache_headers(response)
        return response
