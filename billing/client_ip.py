"""The address a request really comes from, for the login limits.

Behind a reverse proxy every connection comes from the proxy, and the client's address is in
X-Forwarded-For, which anyone can also send. The header is read only when the trusted proxies are
configured (TRUSTED_PROXY_COUNT or TRUSTED_PROXIES), only that header, and only the entry the
nearest trusted proxy appended: what a client writes into the header itself is never taken.
"""

import logging

from django.conf import settings
from ipware import get_client_ip

logger = logging.getLogger(__name__)


class _ForwardedChain:
    """What django-ipware reads: the forwarded chain with the connecting address (the nearest proxy) at its end."""

    def __init__(self, forwarded_for: str, remote_addr: str):
        self.META = {"HTTP_X_FORWARDED_FOR": f"{forwarded_for}, {remote_addr}" if forwarded_for else remote_addr}


def forwarded_client_ip(*, remote_addr: str, forwarded_for: str) -> str | None:
    """The client's address as the trusted proxies forwarded it; None when the request did not come through them.

    Raises ValueError when TRUSTED_PROXY_COUNT / TRUSTED_PROXIES cannot be used (system check billing.E102).
    """
    # Not strict: entries a client put in front of its own address are skipped, not a reason to
    # distrust the chain. The client's address is counted from the proxies' end of the chain.
    ip, _routable = get_client_ip(
        _ForwardedChain(forwarded_for, remote_addr),
        proxy_count=settings.TRUSTED_PROXY_COUNT or None,
        proxy_trusted_ips=settings.TRUSTED_PROXIES or None,
        request_header_order=["HTTP_X_FORWARDED_FOR"],
        strict=False,
    )
    return ip


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the one the trusted proxies forwarded."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    if not settings.TRUSTED_PROXY_COUNT and not settings.TRUSTED_PROXIES:
        return remote_addr
    try:
        ip = forwarded_client_ip(remote_addr=remote_addr, forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""))
    except ValueError:
        # gunicorn runs no system checks: a login must not fail on a mistyped setting, and the log says which.
        logger.exception("TRUSTED_PROXIES / TRUSTED_PROXY_COUNT cannot be used; limiting logins by the connecting address")
        return remote_addr
    # A request that did not pass the configured proxies (a direct connection, a short chain) is
    # limited by the address that connected.
    return ip or remote_addr
