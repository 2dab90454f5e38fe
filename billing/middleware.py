"""Middleware of the billing app."""

from django.utils.cache import add_never_cache_headers
from django.utils.translation import get_language_from_path

# The client area (balances, payments, panel passwords) and the login and password pages.
PRIVATE_PREFIXES = ("/account/", "/accounts/")


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
