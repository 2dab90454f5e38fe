"""Open control panel: log a client (or staff, as that client) in to the service's panel account without its password.

The panel is asked for a one-time key while the person waits (the request's whole purpose, so the
short check timeout applies), and the key leaves billing only inside the address the browser is sent
to: it is neither logged (the panel client drops `key`) nor stored. The history says who opened it.

Each call reaches the panel, so a person may open panels PANEL_LOGIN_RATE times per window: a script
replaying the button, or a client with many services, cannot flood the panel or pile up keys there.
The turns are kept in the `shared` cache, which every web worker sees.
"""

import logging
import time

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from billing.choices import ServiceStatus
from billing.models import Service, ServiceStatusChange
from billing.stored_text import StoredText
from provisioning.coremanager.errors import ForeignAccount, ProvisioningError

logger = logging.getLogger(__name__)


class PanelLoginUnavailable(ValidationError):
    """The service cannot be opened in its panel now: its state or its module's, not the panel's answer."""


class PanelLoginLimited(ValidationError):
    """The person has opened panels PANEL_LOGIN_RATE times in this window already."""


def panel_login_check(service: Service) -> None:
    """Refuse a service whose account cannot be opened: only an active service with a panel login, on an enabled module."""
    if service.status != ServiceStatus.ACTIVE:
        raise PanelLoginUnavailable(_("The control panel can be opened only while the service is active."), code="status")
    if not service.panel_username:
        raise PanelLoginUnavailable(_("This service has no control panel account yet."), code="no_login")
    if not service.tariff.processing_module.is_enabled:
        raise PanelLoginUnavailable(_("The control panel is not available at the moment. Please try again later."), code="module")


def panel_login_available(service: Service) -> bool:
    """Whether to offer "Open control panel" for the service."""
    try:
        panel_login_check(service)
    except PanelLoginUnavailable:
        return False
    return True


def service_panel_login_url(*, service: Service, by) -> str:
    """The address that logs the browser in to the service's account once; `by` is who asked (the client's user or staff).

    Raises PanelLoginUnavailable, PanelLoginLimited, or the panel's ProvisioningError (TransientError
    when another try may work; ForeignAccount when the account at the login is no longer the service's,
    which support has to look into). Not inside a transaction: the panel call would hold it open.
    """
    panel_login_check(service)
    if not _take_turn(by):
        raise PanelLoginLimited(_("The control panel was opened too many times in a row: try again in a minute."), code="limited")
    backend = service.tariff.processing_module.get_backend(timeout=settings.PANEL_CHECK_TIMEOUT)
    try:
        url = backend.login_url(service)
    except ForeignAccount as error:
        logger.warning("service #%d: no login key made, %s is not the service's account: %s", service.pk, service.panel_username, error)
        raise
    except ProvisioningError as error:
        logger.warning("service #%d: the panel gave no login key for %s: %s", service.pk, service.panel_username, error)
        raise
    opened = StoredText(gettext_noop("Control panel opened as %(login)s."), {"login": service.panel_username})
    ServiceStatusChange.objects.create(service=service, from_status=service.status, to_status=service.status, reason=opened, changed_by=by)
    return url


def _take_turn(user) -> bool:
    """One of the user's turns in the current window, or False when they are all taken.

    Each turn is a slot that `add` gives to one request only, atomically in every cache backend, so
    requests sent together cannot slip past the limit as a read-then-write counter would let them.
    """
    count, seconds = settings.PANEL_LOGIN_RATE
    shared = caches["shared"]
    prefix = f"panel-login:{user.pk}:{int(time.time() // seconds)}"
    if shared.get(f"{prefix}:{count - 1}"):  # all taken: one look instead of `count` refused adds
        return False
    return any(shared.add(f"{prefix}:{slot}", True, timeout=seconds) for slot in range(count))
