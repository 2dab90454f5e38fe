"""The COREmanager wire protocol that ISPmanager 5 and IPmanager 5 share (docs/ispmanager-api.md).

POST form-encoded, `authinfo=LOGIN:PASSWORD`, `out=json`, the reply's `doc`, errors as typed
exceptions. Nothing about billing lives here.
"""

import hashlib
import logging
import ssl
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests

from provisioning.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)

# Error types that another attempt cannot fix; any other type is a panel-side failure. `limit`
# (a quota or an address pool used up) is not in the document's list but does not pass by itself.
PERMANENT_ERROR_TYPES = frozenset({"auth", "exists", "value", "missed", "access", "limit"})
SECRET_PARAMS = frozenset({"authinfo", "passwd", "confirm", "password", "key"})


def text(node) -> str:
    """The text of a reply field: `{"$": "value"}` -> "value"; an empty element -> ""."""
    if isinstance(node, dict):
        return node.get("$", "")
    return "" if node is None else str(node)


def elems(doc: dict) -> list[dict]:
    """The list of a list reply, each element's fields as plain strings."""
    items = doc.get("elem", [])
    if isinstance(items, dict):
        items = [items]
    return [{key: text(value) for key, value in item.items()} for item in items]


def fields(doc: dict) -> dict:
    """The fields of a form reply (`user.edit&elid=...`) as plain strings."""
    return {key: text(value) for key, value in doc.items() if not key.startswith("$") and key not in {"tparams", "metadata"}}


def tls_verify(verify_tls: bool, ca_certificate: str = "") -> bool | str:
    """requests' `verify` for a panel: on, off, or the path of a file holding its trusted CA."""
    if not verify_tls or not ca_certificate:
        return verify_tls
    path = Path(tempfile.gettempdir()) / "billing-ca" / f"{hashlib.sha256(ca_certificate.encode()).hexdigest()}.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ca_certificate)
    return str(path)


class CoreClient:
    """One panel account: calls `func=NAME` with its credentials and returns the reply's `doc`."""

    def __init__(self, url: str, username: str, password: str, *, verify: bool | str = True, timeout: tuple[float, float] = (10, 90)):
        self.url, self.username, self.timeout = url, username, timeout
        self._password = password
        self._session = requests.Session()
        self._verify = verify
        self._host = urlsplit(url).netloc

    def __repr__(self):
        return f"<{type(self).__name__} {self.username}@{self.url}>"

    def call(self, func: str, **params) -> dict:
        data = {"out": "json", "func": func, "authinfo": f"{self.username}:{self._password}"}
        data.update({key: self._encode(value) for key, value in params.items() if value is not None})
        logger.debug("%s %s %s", self._host, func, {key: value for key, value in data.items() if key not in SECRET_PARAMS})
        try:
            # verify per request: a session-wide False is overridden by REQUESTS_CA_BUNDLE in the environment.
            response = self._session.post(self.url, data=data, timeout=self.timeout, verify=self._verify, allow_redirects=False)
        except requests.exceptions.SSLError as error:
            if _caused_by(error, ssl.SSLCertVerificationError):
                message = (
                    f"the TLS certificate of {self._host} could not be verified: give the panel's CA certificate "
                    f"or switch verification off ({_reason(error)})"
                )
            else:
                message = f"{self._host} does not speak TLS as expected (is the URL http:// rather than https://?): {_reason(error)}"
            raise PermanentError(message, type="tls") from None
        except requests.exceptions.ChunkedEncodingError as error:
            raise TransientError(f"the reply from {self._host} was cut off: {_reason(error)}", type="incomplete") from None
        except requests.exceptions.Timeout:
            raise TransientError(f"{self._host} did not answer within {self.timeout[1]:.0f} seconds", type="timeout") from None
        except requests.exceptions.RequestException as error:
            raise TransientError(f"cannot connect to {self._host}: {_reason(error)}", type="connection") from None
        return self._doc(response)

    def _doc(self, response) -> dict:
        if response.status_code == 404:
            raise TransientError(f"{self.url} is not the panel's API address (HTTP 404): check the path, e.g. /ispmgr", type="not_panel")
        if response.status_code != 200:
            raise TransientError(f"{self._host} answered HTTP {response.status_code}", type="http")
        try:
            doc = response.json()["doc"]
        except (ValueError, KeyError, TypeError):
            raise TransientError(
                f"{self.url} does not answer like the panel's API: check the URL (e.g. https://host:1500/ispmgr)",
                type="not_panel",
            ) from None
        if "error" in doc:
            raise _reply_error(doc["error"])
        return doc

    @staticmethod
    def _encode(value) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)


def _reply_error(error: dict) -> TransientError | PermanentError:
    kind, obj = error.get("$type", ""), error.get("$object", "")
    said = text(error.get("msg")) or text(error.get("detail")) or f"{kind}({obj})"
    if kind == "auth":
        said = f"wrong username or password ({said})"
    cls = PermanentError if kind in PERMANENT_ERROR_TYPES else TransientError
    return cls(said, type=kind, object=obj)


def _caused_by(error: BaseException, kind: type) -> bool:
    while error is not None:
        if isinstance(error, kind):
            return True
        error = error.__context__ or error.__cause__
        if isinstance(error, requests.exceptions.SSLError) and error.args and isinstance(error.args[0], BaseException):
            error = error.args[0]
    return False


def _reason(error: Exception) -> str:
    """The innermost cause of a requests error, without the URL (which may carry parameters)."""
    while error.__context__ is not None and error.__context__ is not error:
        error = error.__context__
    return str(error).split(": ", 1)[-1] if isinstance(error, requests.exceptions.RequestException) else str(error)
