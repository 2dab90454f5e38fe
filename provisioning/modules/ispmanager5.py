"""The "ISPmanager 5" processing module: accounts are ISPmanager users made from a template."""

import contextlib
import logging
import secrets
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.utils.translation import gettext_noop

from billing.choices import FLAG_RESOURCES, ProductType, ResourceKind
from billing.stored_text import StoredText
from billing.username_template import MAX_LOGIN_LENGTH, expand_username_template
from provisioning.choices import ModuleKind
from provisioning.coremanager.check import CheckResult, sentences
from provisioning.coremanager.errors import AlreadyExists, ForeignAccount, PermanentError, ProvisioningError
from provisioning.ispmanager.client import ISPmanagerClient, edition_of, level_name, limits_of
from provisioning.modules.base import ModuleBackend, PanelAccount, register

logger = logging.getLogger(__name__)

# How many numbered variants of a login are tried when the plain one is taken.
MAX_LOGIN_SUFFIX = 50
# Random bytes of a one-time login key: 43 URL-safe characters (the panel asks for at least 16).
LOGIN_KEY_BYTES = 32


# The caller's role in a check's message, translated when it is read.
ROLE_NAMES = {
    "root": gettext_noop("root"),
    "administrator": gettext_noop("administrator"),
    "reseller": gettext_noop("reseller"),
    "user": gettext_noop("user"),
}


def account_marker(service) -> str:
    """What billing writes into the user's full name to recognise the account as this service's."""
    return f"Service #{service.pk}"


def not_the_services(module, service, login: str, form: dict, row: dict | None = None) -> StoredText | None:
    """Why the account LOGIN is not the service's, by its `user.edit` form (and `func=user` row, when read); None when it may be.

    The marker in the full name says whose an account is. Whether the form carries `fullname` is
    unconfirmed (the list has none): without it, an owner the panel shows (Business) other than
    billing's login makes the account somebody else's; when the panel shows neither, this cannot tell.
    """
    if "fullname" in form:
        name = form["fullname"].strip()
        if name == account_marker(service):
            return None
        return StoredText(
            gettext_noop("The account %(login)s is not marked as this service's: its full name is %(name)s."),
            {"login": login, "name": name or StoredText(gettext_noop("empty"))},
        )
    owner = (row or {}).get("owner") or form.get("owner") or ""
    if not owner or owner == module.username:
        return None
    return StoredText(
        gettext_noop("The account %(login)s belongs to %(owner)s, not to billing's login %(ours)s."),
        {"login": login, "owner": owner, "ours": module.username},
    )


# The ISPmanager limit each resource sets. Dedicated IPs are not a panel limit: they come from IPmanager.
LIMIT_NAMES = {
    ResourceKind.DISK: "limit_quota",
    ResourceKind.DATABASES: "limit_db",
    ResourceKind.DATABASE_USERS: "limit_db_users",
    ResourceKind.WEB_DOMAINS: "limit_webdomains",
    ResourceKind.DNS_DOMAINS: "limit_domains",
    ResourceKind.MAIL_DOMAINS: "limit_emaildomains",
    ResourceKind.MAILBOXES: "limit_emails",
    ResourceKind.FTP_USERS: "limit_ftp_users",
    ResourceKind.CPU: "limit_cpu",  # CPU time in seconds
    ResourceKind.MEMORY: "limit_memory",
    ResourceKind.PROCESSES: "limit_process",
    ResourceKind.SHELL: "limit_shell",
    ResourceKind.SSL: "limit_ssl",
    ResourceKind.CGI: "limit_cgi",
}


def panel_limits(template: dict, service) -> dict:
    """The template's limits with the service's resources on top (the tariff has priority)."""
    limits = limits_of(template)
    for resource in service.resources.all():
        name = LIMIT_NAMES.get(resource.kind)
        if name:
            limits[name] = ("on" if resource.quantity else "off") if resource.kind in FLAG_RESOURCES else str(resource.quantity)
    return limits


def login_candidates(login: str):
    """`user117`, then `user1171`, `user1172`, ... each cut to fit a login."""
    yield login
    for number in range(1, MAX_LOGIN_SUFFIX + 1):
        suffix = str(number)
        yield login[: MAX_LOGIN_LENGTH - len(suffix)] + suffix


@register(ModuleKind.ISPMANAGER5)
class ISPmanager5Backend(ModuleBackend):
    def __init__(self, module, *, timeout: tuple[float, float] | None = None):
        super().__init__(module)
        self.client = ISPmanagerClient(
            module.url,
            module.username,
            module.password,
            verify=module.verify_tls,
            ca_certificate=module.ca_certificate,
            timeout=timeout or settings.PANEL_TIMEOUT,
        )

    def check_connection(self) -> CheckResult:
        try:
            license_text = self.client.license_text()
            name, level = self.client.caller()
        except ProvisioningError as error:
            # What the admin has to fix blocks the save; an unreachable or failing panel may pass by itself.
            return CheckResult(ok=False, message=error.message, blocking=isinstance(error, PermanentError))
        edition = edition_of(license_text)
        # Neither whoami nor auth told the level: unknown, which is not "user" (that would refuse every administrator).
        role = level_name(level) if level is not None else ""
        found = {"edition": edition, "level": role, "edition_text": license_text}
        if role == "user":
            message = gettext_noop("%(user)s is an ISPmanager user account: billing needs an administrator to manage accounts.")
            return CheckResult(ok=False, message=StoredText(message, {"user": name}), blocking=True, **found)
        if edition == "business" and role == "reseller" and self.module.product_type == ProductType.STORAGE:
            message = gettext_noop(
                "Integration cannot be set up with Reseller credentials: use the Admin login and password of ISPmanager Business."
            )
            return CheckResult(ok=False, message=StoredText(message), blocking=True, **found)
        notes = []  # what the admin should know, though nothing blocks
        if role:
            connected = StoredText(
                gettext_noop("Connected to ISPmanager %(edition)s as %(level)s %(user)s."),
                {"edition": edition.capitalize(), "level": StoredText(ROLE_NAMES[role]), "user": name},
            )
        else:
            connected = StoredText(
                gettext_noop("Connected to ISPmanager %(edition)s as %(user)s."), {"edition": edition.capitalize(), "user": name}
            )
            unverified = gettext_noop(
                "Could not verify the account's level: the panel tells it neither in whoami nor in auth. "
                "Billing needs an administrator (or a reseller for shared hosting)."
            )
            notes.append(StoredText(unverified))
        if edition == "lite" and "lite" not in license_text.lower():
            taken = gettext_noop("The panel calls itself “%(text)s”, which does not say Business: taken as Lite.")
            notes.append(StoredText(taken, {"text": license_text[:200]}))
        if edition == "lite":
            quotas = gettext_noop(
                "%(connected)s Make sure disk quotas are enabled on the server: without them the disk limit has no effect."
            )
            connected = StoredText(quotas, {"connected": connected})
        return CheckResult(ok=True, message=sentences(connected, *notes), warning=edition == "lite" or bool(notes), **found)

    def open(self, service, *, password: str) -> str:
        tariff = service.tariff
        template = self._template(tariff.account_template)
        limits = panel_limits(template, service)
        login = expand_username_template(
            tariff.username_template,
            username=service.ordered_by.username if service.ordered_by else "",
            domain=service.domain,
            service_id=service.pk,
            account_id=service.client_id,
        )
        marker = account_marker(service)
        domain = service.domain if tariff.product_type == ProductType.VHOST else ""
        for candidate in login_candidates(login):
            existing = self.client.user(candidate)
            if existing is not None:
                if not self._made_for(service, candidate, existing, password):
                    continue  # somebody else's account
                # Created by an earlier attempt whose reply was lost: make it exactly what we want.
                self.client.user_edit(candidate, preset=tariff.account_template, passwd=password, confirm=password, **limits)
                return candidate
            try:
                self.client.user_create(
                    name=candidate, password=password, fullname=marker, preset=tariff.account_template, limits=limits, domain=domain
                )
            except AlreadyExists:
                continue  # taken between our look and our create
            return candidate
        message = gettext_noop("%(login)s and its numbered variants up to %(count)d are all taken in the panel")
        raise AlreadyExists(StoredText(message, {"login": login, "count": MAX_LOGIN_SUFFIX}))

    def _made_for(self, service, login: str, form: dict, password: str) -> bool:
        """Whether the existing account LOGIN is this service's, made by an earlier attempt whose reply was lost.

        Adopting an account sets its password and template, so a foreign one must never be adopted:
        it must carry the service's marker, or (the form shows no full name) not be owned by another
        login and accept this operation's password, a random one that every attempt of this operation
        sends and nobody else knows. Otherwise the next login variant is used.
        """
        if not_the_services(self.module, service, login, form) is not None:
            return False
        return "fullname" in form or self.client.accepts_login(login, password)

    def assign_ips(self, service, *, login: str, addresses: list[str]) -> None:
        for address in addresses:
            self.client.ip_assign(address, login)

    def unassign_ips(self, service, addresses: list[str]) -> None:
        """Remove the addresses from ISPmanager Business (`ipaddr.delete`); one already gone counts as removed.

        Lite assigns no addresses, so nothing is asked of it. The edition is read from the panel now,
        not from the last connection check, which may be old or never have run.
        """
        if not addresses or self.client.edition() != "business":
            return
        owners = {row.get("name", "").strip(): row.get("owner", "") for row in self.client.ip_addresses()}
        for address in addresses:
            if address not in owners:
                continue  # already gone
            if owners[address] != service.panel_username:
                # Configured for somebody else by hand: not billing's to undo. IPmanager's address is still released.
                logger.warning(
                    "service #%d: %s is assigned to %s in the panel, not to %s: left there",
                    service.pk,
                    address,
                    owners[address] or "nobody",
                    service.panel_username,
                )
                continue
            self.client.ip_unassign(address)

    def suspend(self, service) -> None:
        self.client.user_suspend(service.panel_username)

    def resume(self, service) -> None:
        self.client.user_resume(service.panel_username)

    def close(self, service) -> None:
        if service.panel_username:
            self.client.user_delete(service.panel_username)

    def set_limits(self, service) -> None:
        template = self._template(service.tariff.account_template)
        self.client.user_edit(service.panel_username, preset=service.tariff.account_template, **panel_limits(template, service))

    def change_password(self, service, *, password: str) -> None:
        self.client.user_set_password(service.panel_username, password)

    def sync(self, service) -> PanelAccount:
        """The account's state from the `func=user` list (documented there), its limits from its `user.edit` form."""
        form = self.client.user(service.panel_username) if service.panel_username else None
        active = self.client.user_active(service.panel_username) if form is not None else None
        if active is None:  # no such user, or deleted between the two reads
            return PanelAccount(exists=False)
        return PanelAccount(exists=True, active=active, limits=limits_of(form))

    def login_url(self, service) -> str:
        """Raises ForeignAccount when the account at the service's login is not (or no longer) the service's."""
        self._require_the_services(service)
        # A fresh random key per login: the panel accepts it once, and it leaves billing only inside the returned address.
        key = secrets.token_urlsafe(LOGIN_KEY_BYTES)
        self.client.session_newkey(service.panel_username, key)
        parts = urlsplit(self.module.url)
        login = urlencode({"func": "auth", "username": service.panel_username, "key": key, "checkcookie": "no"})
        return urlunsplit(parts._replace(query=f"{parts.query}&{login}" if parts.query else login, fragment=""))

    def _require_the_services(self, service) -> None:
        """A login may have been freed in the panel and taken by another account since: never log a client in to that one."""
        login = service.panel_username
        form = self.client.user(login)
        if form is None:
            raise ForeignAccount(StoredText(gettext_noop("The panel has no account %(login)s."), {"login": login}))
        if (reason := not_the_services(self.module, service, login, form)) is not None:
            raise ForeignAccount(reason)

    def _template(self, name: str) -> dict:
        """The account template, created with unlimited resources when the panel does not have it."""
        template = self.client.preset(name)
        if template is None:
            with contextlib.suppress(AlreadyExists):  # an earlier attempt created it and lost the reply
                self.client.preset_create(name)
            template = self.client.preset(name) or {}
        return template
