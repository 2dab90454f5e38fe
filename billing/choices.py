from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class ProductType(models.TextChoices):
    VHOST = "vhost", _("Shared hosting")
    STORAGE = "storage", _("External FTP-storage")


class Currency(models.TextChoices):
    RUB = "RUB", "RUB"
    USD = "USD", "USD"
    EUR = "EUR", "EUR"


class Language(models.TextChoices):
    EN = "en", _("English")
    RU = "ru", _("Russian")


class BillingPeriod(models.IntegerChoices):
    """A billing period, in months."""

    MONTH = 1, _("Monthly")
    QUARTER = 3, _("Quarterly")
    HALF_YEAR = 6, _("Semi-annually")
    YEAR = 12, _("Yearly")
    TWO_YEARS = 24, _("Biennially")


class LedgerEntryKind(models.TextChoices):
    TOPUP = "topup", _("Top-up")
    CHARGE = "charge", _("Charge")
    REFUND = "refund", _("Refund")
    ADJUSTMENT = "adjustment", _("Adjustment")


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("Invoice")
    CREDIT_NOTE = "credit_note", _("Credit note")
    RECEIPT = "receipt", _("Receipt")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting payment")
    PAID = "paid", _("Paid")
    CANCELLED = "cancelled", _("Cancelled")


class ResourceKind(models.TextChoices):
    DISK = "disk", _("Disk, MiB")
    DATABASES = "databases", _("Databases")
    DATABASE_USERS = "database_users", _("Database users")
    WEB_DOMAINS = "web_domains", _("Web domains")
    DNS_DOMAINS = "dns_domains", _("DNS domains")
    MAIL_DOMAINS = "mail_domains", _("Mail domains")
    MAILBOXES = "mailboxes", _("Mailboxes")
    FTP_USERS = "ftp_users", _("FTP users")
    CPU = "cpu", _("CPU time, s")
    MEMORY = "memory", _("Memory, MiB")
    PROCESSES = "processes", _("Processes")
    SHELL = "shell", _("Shell access")
    SSL = "ssl", _("SSL")
    CGI = "cgi", _("CGI")
    DEDICATED_IPV4 = "dedicated_ipv4", _("Dedicated IPv4 addresses")


# On/off resources: their quantity is 0 or 1.
FLAG_RESOURCES = frozenset({ResourceKind.SHELL, ResourceKind.SSL, ResourceKind.CGI})


class ServiceStatus(models.TextChoices):
    ORDERED = "ordered", _("Ordered")
    PROCESSING = "processing", _("Processing")
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    DELETED = "deleted", _("Deleted")
    FAILED = "failed", _("Failed")


class SuspendReason(models.TextChoices):
    NONPAYMENT = "nonpayment", _("Non-payment")
    STAFF = "staff", _("By staff")
    CLIENT = "client", _("By client")
    ABUSE = "abuse", _("Abuse")


class PanelAction(models.TextChoices):
    """What billing asks a processing module to do to a service's account."""

    OPEN = "open", _("Create account")
    SUSPEND = "suspend", _("Suspend")
    RESUME = "resume", _("Resume")
    CLOSE = "close", _("Delete account")
    SET_LIMITS = "set_limits", _("Change resources")
    CHANGE_PASSWORD = "change_password", _("Change password")
    SYNC = "sync", _("Read state from the panel")


_S = ServiceStatus
# The only status changes a service may go through; everything else is refused.
SERVICE_TRANSITIONS = {
    _S.ORDERED: {_S.PROCESSING, _S.DELETED},
    _S.PROCESSING: {_S.ACTIVE, _S.SUSPENDED, _S.DELETED, _S.FAILED},
    _S.ACTIVE: {_S.PROCESSING, _S.SUSPENDED, _S.DELETED, _S.FAILED},
    _S.SUSPENDED: {_S.PROCESSING, _S.ACTIVE, _S.DELETED, _S.FAILED},
    _S.FAILED: {_S.PROCESSING, _S.ACTIVE, _S.SUSPENDED, _S.DELETED},
    _S.DELETED: set(),
}


class BillingRunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    DONE = "done", pgettext_lazy("billing run", "Done")
    FAILED = "failed", _("Done with failures")


class BillingAction(models.TextChoices):
    """What the daily billing run does to a service."""

    RENEW = "renew", _("Renew")
    NOTICE = "notice", _("Notice")
    SUSPEND = "suspend", _("Suspend for non-payment")
    RESUME = "resume", _("Resume after payment")
    DELETE = "delete", _("Delete after non-payment")


class BillingOutcome(models.TextChoices):
    DONE = "done", pgettext_lazy("billing run item", "Done")
    WOULD = "would", _("Would do (dry run)")
    FAILED = "failed", _("Failed")


class NotificationKind(models.TextChoices):
    RENEWED = "renewed", _("Renewed")
    LOW_BALANCE = "low_balance", _("Low balance")
    EXPIRES = "expires", _("Expires without renewal")
    SUSPENDED = "suspended", _("Suspended for non-payment")
    RESUMED = "resumed", _("Resumed")
    DELETED = "deleted", _("Deleted")
