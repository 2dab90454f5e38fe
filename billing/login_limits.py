"""Limits on password guessing, built on django-axes: per (login, address) and, looser, per address.

Axes counts failures per (login, address) (AXES_LOCKOUT_PARAMETERS) and applies one limit to them.
Password spraying tries a few passwords on many logins from one address, so failures from one address
across all logins have their own, higher limit (LOGIN_ADDRESS_FAILURE_LIMIT). It is kept out of the
lockout parameters on purpose: a successful login resets the parameters' records, and a sprayer with
one account of its own must not be able to reset its address's count by logging in to it.
"""

import math

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_credentials
from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import Sum
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers


class LoginLimitHandler(AxesDatabaseHandler):
    """Axes' database handler plus the per-address limit across logins."""

    def address_failures(self, request) -> int:
        attempts = AccessAttempt.objects.filter(ip_address=request.axes_ip_address, attempt_time__gte=get_cool_off_threshold(request))
        return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0

    def is_locked(self, request, credentials=None) -> bool:
        return super().is_locked(request, credentials) or self.address_failures(request) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None or request.axes_locked_out or self.is_whitelisted(request, credentials):
            return
        if self.address_failures(request) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT:
            # Locked at this very failure, as axes does for its own limit.
            request.axes_locked_out = True
            request.axes_credentials = credentials
            username = get_client_username(request, credentials)
            user_locked_out.send("axes", request=request, username=username, ip_address=request.axes_ip_address)


def login_tried(request, credentials=None):
    """The login a try is recorded and limited under (AXES_USERNAME_CALLABLE): as typed, cut to axes' column.

    Django's login forms do not check its length, and a longer one would fail the insert on PostgreSQL;
    no real login is that long (usernames hold 150 characters).
    """
    field = settings.AXES_USERNAME_FORM_FIELD
    username = credentials.get(field) if credentials else request.POST.get(field)
    return username[: AccessAttempt._meta.get_field("username").max_length] if isinstance(username, str) else username


def lockout_response(request, original_response=None, credentials=None):
    """The lockout page, saying how long: every refused try restarts the wait, so it is the whole cool-off."""
    minutes = math.ceil(get_cool_off(request).total_seconds() / 60)
    response = render(request, "registration/locked_out.html", {"minutes": minutes}, status=429)
    response["Retry-After"] = str(minutes * 60)
    add_never_cache_headers(response)
    return response


def password_confirm(*, request, password: str) -> bool:
    """Whether `password` is the signed-in user's, counted like a login: wrong ones lock as wrong logins do.

    When the (login, address) or the address is locked, the answer is no whatever the password, and
    the request is marked so that the lockout page is shown.
    """
    user = authenticate(request, username=request.user.get_username(), password=password)
    if user is None or user.pk != request.user.pk:
        return False
    AxesProxyHandler.get_implementation().reset_user_attempts(request, get_credentials(request.user.get_username()))
    return True


def login_lockout_clear(*, username: str) -> int:
    """Forget the wrong passwords of one login from every address (after its password was reset)."""
    return AxesProxyHandler.reset_attempts(username=username)
