"""API tokens: made with a random secret shown once, kept as its SHA-256, looked up by their prefix."""

import hashlib
import hmac
import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from billing.api.models import ApiScope, ApiToken

# A token's secret has 256 bits of entropy: a plain SHA-256 of it is as hard to reverse as the secret
# is to guess, and lets every request check it in microseconds (a password hash would cost ~100 ms each).
PREFIX_BYTES = 6
SECRET_BYTES = 32
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION_SECONDS = 60


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def scopes_clean(scopes) -> list[str]:
    """The scopes in their fixed order; read is implied by the others."""
    known = set(ApiScope.values)
    unknown = [scope for scope in scopes if scope not in known]
    if unknown:
        raise ValidationError(_("Unknown scope: %(scopes)s."), code="invalid_scope", params={"scopes": ", ".join(map(str, unknown))})
    wanted = set(scopes) | {ApiScope.READ}
    return [scope for scope in ApiScope.values if scope in wanted]


def token_check(*, user, expires_at: datetime | None) -> None:
    """Whether `user` may get one more token expiring at `expires_at`; call it inside the transaction that makes it.

    The user's row stays locked until that transaction ends, so two requests at once cannot both pass the limit.
    """
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": _("The expiry must be in the future.")}, code="invalid")
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    if live_tokens(user=user).count() >= settings.API_TOKENS_PER_USER_MAX:
        raise ValidationError(
            _("This user already has %(limit)d live API tokens, the most allowed: revoke one that is no longer used first."),
            code="too_many_tokens",
            params={"limit": settings.API_TOKENS_PER_USER_MAX},
        )


@transaction.atomic
def token_create(*, user, name: str, scopes, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Make a token for `user`; the returned plaintext is the only time its secret exists outside the caller."""
    token_check(user=user, expires_at=expires_at)
    prefix = secrets.token_hex(PREFIX_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    token = ApiToken(user=user, name=name, prefix=prefix, secret_hash=_digest(secret), scopes=scopes_clean(scopes), expires_at=expires_at)
    token.full_clean()
    token.save()
    return token, f"{prefix}.{secret}"


def token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        token.refresh_from_db(fields=["revoked_at"])
    return token


def token_authenticate(plaintext: str) -> ApiToken | None:
    """The live token `plaintext` names, with its user; None for anything else (malformed, wrong, revoked, expired)."""
    prefix, dot, secret = plaintext.partition(".")
    # Prefixes are hex: anything else (a NUL byte, which PostgreSQL refuses in a query) is no token.
    if not dot or not secret or len(prefix) > 16 or not (prefix.isascii() and prefix.isalnum()):
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _digest(secret)):
        return None
    now = timezone.now()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now) or not token.user.is_active:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() >= LAST_USED_RESOLUTION_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def live_tokens(*, user):
    """The user's tokens that still authenticate: not revoked, not expired."""
    now = timezone.now()
    return ApiToken.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), user=user, revoked_at__isnull=True)


def token_is_live(token: ApiToken) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > timezone.now())
