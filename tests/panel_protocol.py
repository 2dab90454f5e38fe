"""Calls as a panel sees them on the wire, for the emulators' protocol tests (ISPmanager and IPmanager)."""

import xml.etree.ElementTree as ET

import requests


def caller(default_credentials: tuple[str, str]):
    """`raw` and `doc` functions that send `default_credentials` unless a call gives its own.

    `credentials=None` sends no authinfo (for func=auth, or a session's auth=ID).
    """

    def raw(server, func, *, out="json", method="post", credentials=default_credentials, **params) -> requests.Response:
        params = {"func": func, "out": out, **params}
        if credentials:
            params["authinfo"] = ":".join(credentials)
        if method == "get":
            return requests.get(server.url, params=params, timeout=5)
        return requests.post(server.url, data=params, timeout=5)

    def doc(server, func, **kwargs) -> dict:
        response = raw(server, func, **kwargs)
        assert response.status_code == 200  # API errors too: the error is in the body
        return response.json()["doc"]

    return raw, doc


def xml_doc(response: requests.Response) -> ET.Element:
    return ET.fromstring(response.content)  # noqa: S314 (our own emulator on loopback)


def error_of(reply: dict) -> tuple[str, str]:
    return reply["error"]["$type"], reply["error"]["$object"]
