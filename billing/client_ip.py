"""The address a request really comes from, for the login limits.

Behind a reverse proxy every connection comes from the proxy, and the client's address is in
X-Forwarded-For, which anyone can also send. The header is read only when the trusted proxies are
configured (TRUSTED_PROXY_COUNT or TRUSTED_PROXIES), only that header, and only the entry the
nearest trusted proxy appended: what a client writes into the header itself is never taken.
"""

from django.conf import settings
from ipware import get_client_ip


class _ForwardedChain:
    """What django-ipware reads: the forwarded chain with the connecting address (the nearest proxy) at its end."""

    def __init__(self, forwarded_for: str, remote_addr: str):
        self.META = {"HTTP_X_FORWARDED_FOR": f"{forwarded_for}, {remote_addr}" if forwarded_for else remote_addr}


def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, or the one the trusted proxies forwarded."""
    remote_addr = request.META.get("REMOTE_ADDR", "")
    proxy_count, proxies = settings.TRUSTED_PROXY_COUNT, settings.TRUSTED_PROXIES
    if not proxy_count and not proxies:
        return remote_addr
    chain = _ForwardedChain(request.META.get("HTTP_X_FORWARDED_FOR", ""), remote_addr)
    # Not strict: entries a client put in front of its own address are skipped, not a reason to
    # distrust the chain. The client's address is counted from the proxies' end of the chain.
    ip, _routable = get_client_ip(
        chain,
        proxy_count=proxy_count or None,
        proxy_trusted_ips=proxies or None,
        request_header_order=["HTTP_X_FORWARDED_FOR"],
        strict=False,
    )
    # A request that did not pass the configured proxies (a direct connection, a short chain) is
    # limited by the address that connected.
    return ip or remote_addr
