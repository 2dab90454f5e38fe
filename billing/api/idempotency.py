"""`Idempotency-Key` on the POSTs that create something or move money.

The key is claimed in a row committed before the action runs, so a concurrent repeat sees it and is
told 409 `request_in_progress`. The action and the storing of its answer commit together: the key
never holds an answer for work that was rolled back, and work that committed always has its answer.
A repeat with the same key and body gets that answer again (status and body) and nothing is done;
the same key with another body or address is 422 `idempotency_key_reused`. Only successes are kept:
after an error answer the key is free, so the corrected request may reuse it. Keys are per user and
kept for API_IDEMPOTENCY_KEY_TTL; a claim older than API_IDEMPOTENCY_STALE_AFTER whose request never
finished (its process died, which rolled its work back) may be taken over.
"""

import hashlib
import json
import logging
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from billing.api.errors import ApiError
from billing.api.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255

HEADER_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="A unique key per operation (e.g. a UUID), 1 to 255 printable ASCII characters. Repeating the request with the same key "
    "and body replays the first answer without doing anything again.",
)


def _key(request) -> str:
    key = request.headers.get(HEADER)
    if key is None:
        raise ApiError(_("This request needs an Idempotency-Key header."), code="idempotency_key_missing", status=400)
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not all(" " <= char <= "~" for char in key):
        raise ApiError(
            _("The Idempotency-Key must be 1 to 255 printable ASCII characters."), code="idempotency_key_invalid", status=400
        )
    return key


def _fingerprint(request) -> str:
    data = request.data
    if hasattr(data, "lists"):
        data = dict(data.lists())
    body = json.dumps(data, sort_keys=True, cls=JSONEncoder)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _claim(request, key: str, fingerprint: str) -> IdempotencyRecord | Response:
    now = timezone.now()
    mine = IdempotencyRecord.objects.filter(user=request.user)
    mine.filter(key=key, created_at__lt=now - timedelta(seconds=settings.API_IDEMPOTENCY_KEY_TTL)).delete()
    mine.filter(key=key, status_code__isnull=True, created_at__lt=now - timedelta(seconds=settings.API_IDEMPOTENCY_STALE_AFTER)).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(user=request.user, key=key, request_hash=fingerprint)
    except IntegrityError:
        pass
    first = mine.filter(key=key).first()
    if first is None:  # the first request failed and freed the key in the meantime
        return _claim(request, key, fingerprint)
    if first.request_hash != fingerprint:
        raise ApiError(_("This Idempotency-Key was already used for another request."), code="idempotency_key_reused", status=422)
    if first.status_code is None:
        raise ApiError(_("A request with this Idempotency-Key is still in progress."), code="request_in_progress", status=409)
    return Response(first.response, status=first.status_code, headers={"Idempotent-Replayed": "true"})


def idempotent(action):
    """Wrap a view or viewset action that creates something or moves money (see the module's docstring)."""

    @wraps(action)
    def run(view, request, *args, **kwargs):
        claimed = _claim(request, _key(request), _fingerprint(request))
        if isinstance(claimed, Response):
            return claimed
        try:
            with transaction.atomic():
                response = action(view, request, *args, **kwargs)
                if 200 <= response.status_code < 300:
                    stored = json.loads(json.dumps(response.data, cls=JSONEncoder))
                    IdempotencyRecord.objects.filter(pk=claimed.pk).update(status_code=response.status_code, response=stored)
                    return response
        except BaseException:
            IdempotencyRecord.objects.filter(pk=claimed.pk).delete()
            raise
        IdempotencyRecord.objects.filter(pk=claimed.pk).delete()
        return response

    # Read by billing.api.schema.ApiAutoSchema, which documents the header: an extend_schema here would be
    # lost under an @action placed above this decorator (the action replaces the function's schema kwargs).
    run.idempotent = True
    return run


def idempotency_keys_purge() -> int:
    """Forget the answers older than API_IDEMPOTENCY_KEY_TTL (cron, hourly); returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.API_IDEMPOTENCY_KEY_TTL)
    deleted, _by_model = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    logger.info("Purged %d expired idempotency keys", deleted)
    return deleted
