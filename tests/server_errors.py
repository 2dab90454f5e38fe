"""A browser that keeps going after a server error and lists every request that answered with one."""

import traceback

from django.test import Client as BrowserClient


class ServerErrorLog:
    """Sends requests like the test client; each answer of 500 or more is remembered with its traceback.

    The client is made with raise_request_exception=False, so that an error shows as the status a
    visitor would get (DEBUG is off in tests: Django's own 500 page), not as an exception in the test.
    """

    def __init__(self, browser: BrowserClient | None = None):
        self.browser = browser or BrowserClient(raise_request_exception=False)
        self.failures: list[str] = []
        self.requests = 0

    def open(self, url, data=None, *, method="get", **extra):
        response = getattr(self.browser, method)(url, data if data is not None else {}, **extra)
        self.requests += 1
        if response.status_code >= 500:
            shown = repr(data)[:120] if data is not None else ""
            self.failures.append(f"{method.upper()} {url[:200]} {shown} {extra!r:.120} -> {response.status_code}\n{_cause(response)}")
        return response

    def report(self) -> str:
        return f"{len(self.failures)} of {self.requests} requests answered 5xx:\n\n" + "\n\n".join(self.failures)


def _cause(response) -> str:
    if response.exc_info:
        return "".join(traceback.format_exception(*response.exc_info)[-3:])
    return response.content[:300].decode(errors="replace")
