from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from billing.api.models import ApiToken
from billing.client_ip import client_ip


class TokenRateThrottle(SimpleRateThrottle):
    """API_THROTTLE_RATE per token (per user for a browser session), API_THROTTLE_ANON_RATE per address without one.

    Counted in each process's cache: with several web processes the limit applies per process.
    """

    scope = "api"

    def get_rate(self):
        return None  # read per request in allow_request, so that a changed setting applies at once

    def _ident(self, request) -> tuple[str, str]:
        if isinstance(request.auth, ApiToken):
            return f"token:{request.auth.pk}", settings.API_THROTTLE_RATE
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}", settings.API_THROTTLE_RATE
        # Not DRF's get_ident, which takes X-Forwarded-For from anyone: a new header each time would mean a new allowance.
        return f"anon:{client_ip(request)}", settings.API_THROTTLE_ANON_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self._ident(request)[0]}

    def allow_request(self, request, view):
        self.rate = self._ident(request)[1] or None
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)
