"""The COREmanager wire protocol that ISPmanager 5 and IPmanager 5 share (docs/ispmanager-api.md).

POST form-encoded, `authinfo=LOGIN:PASSWORD`, `out=json`, the reply's `doc`, errors as typed
exceptions. Nothing about billing lives here.
"""

import logging
import ssl
from collections.abc import Callable
from contextvars import ContextVar
from urllib.parse import urlsplit

import requests
from django.utils.translation import gettext_noop
from requests.adapters import HTTPAdapter

from billing.secret_fields import is_unreadable
from billing.stored_text import StoredText
from provisioning.coremanager.errors import (
    AccessDenied,
    AlreadyExists,
    AuthFailed,
    CredentialsUnreadable,
    CutOff,
    InvalidValue,
    LimitReached,
    NoSuchFunction,
    NotAPanel,
    NotFound,
    PanelFailure,
    PermanentError,
    ProvisioningError,
    Timeout,
    TLSFailed,
    Unreachable,
)

logger = logging.getLogger(__name__)

# Caller levels on both panels (ISPsystem's documentation): mailbox user 9, user 16, reseller 24,
# administrator 29, root 30.
LEVEL_USER = 16
LEVEL_RESELLER = 24
LEVEL_ADMIN = 29
LEVEL_ROOT = 30

# COREmanager error types that another attempt cannot fix (`value` and `missed` depend on the
# object: see reply_error); any other type is a failure on the panel's side. `limit` (a quota or an
# address pool used up) is not in the document's list but does not pass by itself.
ERROR_TYPES = {"auth": AuthFailed, "access": AccessDenied, "exists": AlreadyExists, "limit": LimitReached}
SECRET_PARAMS = frozenset({"authinfo", "passwd", "confirm", "password", "key"})


# Lists longer than this are not read: a panel announcing more is broken or hostile, and paging through it would never end.
MAX_LIST_ROWS = 1_000_000


def text(node) -> str:
    """The text of a reply field: `{"$": "value"}` -> "value"; an empty element or another shape -> ""."""
    if isinstance(node, dict):
        node = node.get("$")
    return str(node) if isinstance(node, str | int | float) and not isinstance(node, bool) else ""


def elems(doc: dict) -> list[dict]:
    """The list of a list reply, each element's fields as plain strings."""
    items = doc.get("elem", [])
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise unexpected_shape("elem")
    return [{key: text(value) for key, value in item.items()} for item in items]


def fields(doc: dict) -> dict:
    """The fields of a form reply (`user.edit&elid=...`) as plain strings."""
    return {key: text(value) for key, value in doc.items() if not key.startswith("$") and key not in {"tparams", "metadata"}}


def unexpected_shape(part: str) -> NotAPanel:
    """A reply that is JSON from the panel's address, but not shaped like the API's: no retry will change it."""
    return NotAPanel(StoredText(gettext_noop("the panel's reply has an unexpected shape (%(part)s)"), {"part": part}))


# Called before every panel call made in this context: the operation runner renews its attempt's
# lease with it, whichever client (ISPmanager, IPmanager) the action uses.
on_call: ContextVar[Callable[[], None] | None] = ContextVar("on_call", default=None)


class TrustedCAAdapter(HTTPAdapter):
    """HTTPS verified against one SSLContext only.

    requests would otherwise add its own CA bundle (certifi, or REQUESTS_CA_BUNDLE) to the context:
    the panel's CA would then be trusted along with every public CA, or not used at all.
    """

    def __init__(self, ssl_context: ssl.SSLContext, **kwargs):
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, ssl_context=self._ssl_context, **kwargs)

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        return super().proxy_manager_for(proxy, ssl_context=self._ssl_context, **proxy_kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        # As for verify=True, whatever the request's verify became (REQUESTS_CA_BUNDLE makes it a path): no ca_certs.
        return super().build_connection_pool_key_attributes(request, True, None)

    def cert_verify(self, conn, url, verify, cert):
        conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_REQUIRED", None, None


class CoreClient:
    """One panel account: calls `func=NAME` with its credentials and returns the reply's `doc`.

    `verify` is requests' (on, off, or a CA bundle path); `ca_certificate`, when verifying, is the PEM
    of the one CA trusted for the panel, loaded in memory: no file is written that another local
    user could plant or swap.
    """

    # A panel whose whoami is named otherwise (an IPmanager integration's override) sets its own.
    whoami_function = "whoami"

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        verify: bool | str = True,
        ca_certificate: str = "",
        timeout: tuple[float, float] = (10, 90),
    ):
        self.url, self.username, self.timeout = url, username, timeout
        self._password = password
        self._session = requests.Session()
        self._verify = verify
        self._host = urlsplit(url).netloc
        self._tls_refusal = None
        if verify and ca_certificate and urlsplit(url).scheme == "https":
            try:
                context = ssl.create_default_context(cadata=ca_certificate)
            except (ssl.SSLError, ValueError) as error:
                # Told at the first call, as the panel's own errors are: building a client never fails.
                message = gettext_noop("the trusted CA certificate for %(host)s cannot be read (%(reason)s): paste the CA's PEM again")
                self._tls_refusal = TLSFailed(StoredText(message, {"host": self._host, "reason": str(error)}))
            else:
                self._session.mount("https://", TrustedCAAdapter(context))

    def __repr__(self):
        return f"<{type(self).__name__} {self.username}@{self.url}>"

    def call(self, func: str, /, **params) -> dict:
        self._refuse_before_sending(params)
        if (hook := on_call.get()) is not None:
            hook()
        data = {"out": "json", "func": func, "authinfo": f"{self.username}:{self._password}"}
        data.update({key: self._encode(value) for key, value in params.items() if value is not None})
        logger.debug("%s %s %s", self._host, func, {key: value for key, value in data.items() if key not in SECRET_PARAMS})
        try:
            # verify per request: a session-wide False is overridden by REQUESTS_CA_BUNDLE in the environment.
            response = self._session.post(self.url, data=data, timeout=self.timeout, verify=self._verify, allow_redirects=False)
        except requests.exceptions.SSLError as error:
            if _caused_by(error, ssl.SSLCertVerificationError):
                message = gettext_noop(
                    "the TLS certificate of %(host)s could not be verified: give the panel's CA certificate "
                    "or switch verification off (%(reason)s)"
                )
            else:
                message = gettext_noop("%(host)s does not speak TLS as expected (is the URL http:// rather than https://?): %(reason)s")
            raise TLSFailed(StoredText(message, {"host": self._host, "reason": _reason(error)})) from None
        except requests.exceptions.ChunkedEncodingError as error:
            message = gettext_noop("the reply from %(host)s was cut off: %(reason)s")
            raise CutOff(StoredText(message, {"host": self._host, "reason": _reason(error)})) from None
        except requests.exceptions.Timeout:
            message = gettext_noop("%(host)s did not answer within %(seconds)d seconds")
            raise Timeout(StoredText(message, {"host": self._host, "seconds": round(self.timeout[1])})) from None
        except requests.exceptions.RequestException as error:
            message = gettext_noop("cannot connect to %(host)s: %(reason)s")
            raise Unreachable(StoredText(message, {"host": self._host, "reason": _reason(error)})) from None
        return self._doc(response)

    def rows(self, func: str, **params) -> list[dict]:
        """Every row of a list function, all pages read.

        A panel may page or cap lists ("Number of records"): a reply that carries `p_elems` announces
        how many rows there are, `p_cnt` how many a page holds. Fewer rows than announced is a
        cut-off list, and nothing may be planned on it (sync_ips would release what it did not see).
        """
        rows, page, previous = [], 1, None
        while True:
            doc = self.call(func, p_num=page if page > 1 else None, **params)
            batch = elems(doc)
            rows.extend(batch)
            if "p_elems" not in doc:
                return rows
            total, size, answered = (_number(doc.get(name)) for name in ("p_elems", "p_cnt", "p_num"))
            if total is None or total > MAX_LIST_ROWS:
                raise self._cut_list(func, len(rows), text(doc.get("p_elems")))
            if len(rows) >= total and answered in (None, page):
                return rows
            # A capped list without a page size cannot be paged; a page shorter than its share was cut; a panel
            # that answers another page than the one asked for (or the same rows again) does not page at all.
            short = len(batch) < min(size or 0, total - (len(rows) - len(batch)))
            if not size or short or page * size >= total or answered not in (None, page) or batch == previous:
                raise self._cut_list(func, len(rows), total)
            page, previous = page + 1, batch

    def _cut_list(self, func: str, received: int, announced) -> CutOff:
        message = gettext_noop("the list %(func)s from %(host)s is incomplete: %(received)d rows arrived of %(announced)s announced")
        return CutOff(StoredText(message, {"func": func, "host": self._host, "received": received, "announced": str(announced)}))

    def whoami(self) -> tuple[str, int | None]:
        """What `whoami` alone says: `doc.user.$name` (confirmed) and `$level` (unconfirmed: None when absent)."""
        user = self.call(self.whoami_function).get("user")
        user = user if isinstance(user, dict) else {}
        return text(user.get("$name")) or self.username, _number(user.get("$level"))

    def caller(self) -> tuple[str, int | None]:
        """The caller's login and level: `whoami`, and the `auth` reply's level when whoami gives none.

        Only `doc.user.$name` of whoami is confirmed; the documented place of the level is
        `func=auth`. None when neither says: never read a missing level as "user".
        """
        name, level = self.whoami()
        if level is None:
            try:
                auth = self.call("auth", username=self.username, password=self._password).get("auth")
            except PermanentError:  # whoami accepted these credentials: a refused `auth` only means the level stays unknown
                return name, None
            level = _number(auth.get("$level")) if isinstance(auth, dict) else None
        return name, level

    def _refuse_before_sending(self, params: dict) -> None:
        """What must stop a call before anything leaves: an unusable CA, a secret the keys cannot decrypt."""
        if self._tls_refusal is not None:
            raise self._tls_refusal
        for value in (self._password, *params.values()):
            if is_unreadable(value):
                message = gettext_noop(
                    "%(secret)s cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS, so nothing was sent to "
                    "%(host)s: restore the keys it was encrypted with, or enter the password again"
                )
                raise CredentialsUnreadable(StoredText(message, {"secret": value.label, "host": self._host}))

    def _doc(self, response) -> dict:
        if response.status_code != 200:
            raise reply_error(self.url, status=response.status_code)
        try:
            doc = response.json()["doc"]
        except (ValueError, KeyError, TypeError):
            raise reply_error(self.url) from None
        if not isinstance(doc, dict):
            raise unexpected_shape("doc")
        if "error" in doc:
            raise reply_error(self.url, error=doc["error"] if isinstance(doc["error"], dict) else {})
        return doc

    @staticmethod
    def _encode(value) -> str:
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value)


def reply_error(url: str, *, status: int = 200, error: dict | None = None) -> ProvisioningError:
    """The typed error of a reply that is not a success: by its HTTP status, then by the COREmanager error.

    HTTP 5xx may pass; any other status, or a 200 without the API's `doc`, means that something
    else answers at the URL (another site, a proxy refusing us, a wrong path): no retry fixes that.
    """
    host = urlsplit(url).netloc
    if status >= 500:
        return PanelFailure(StoredText(gettext_noop("%(host)s answered HTTP %(status)d"), {"host": host, "status": status}))
    if status != 200:
        message = gettext_noop("%(url)s is not the panel's API address (HTTP %(status)d): check the URL, e.g. https://host:1500/ispmgr")
        return NotAPanel(StoredText(message, {"url": url, "status": status}))
    if error is None:
        message = gettext_noop("%(url)s does not answer like the panel's API: check the URL (e.g. https://host:1500/ispmgr)")
        return NotAPanel(StoredText(message, {"url": url}))
    kind, obj = error.get("$type", ""), error.get("$object", "")
    said = StoredText.of(text(error.get("msg")) or text(error.get("detail")) or f"{kind}({obj})")  # the panel's words
    if kind == "auth":
        return AuthFailed(StoredText(gettext_noop("wrong username or password (%(panel)s)"), {"panel": said}), object=obj)
    if kind == "value":  # `value(elid)`: the element asked for does not exist; otherwise a field is refused
        cls = NotFound if obj == "elid" else InvalidValue
    elif kind == "missed":  # `missed(func)`: the panel has no such function; otherwise elements not found
        cls = NoSuchFunction if obj == "func" else NotFound
    else:
        cls = ERROR_TYPES.get(kind, PanelFailure)
    return cls(said, object=obj)


def _number(node) -> int | None:
    """A whole number the panel wrote (`"29"`, `{"$": "29"}`), or None when it is absent or not one."""
    value = text(node)
    return int(value) if value.isascii() and value.isdigit() else None


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
