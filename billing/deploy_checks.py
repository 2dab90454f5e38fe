"""System checks of settings (registered in BillingConfig.ready): the test payment gateway, the trusted proxies, documents."""

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.checks import Error
from django.utils.translation import gettext

from billing.client_ip import forwarded_client_ip


def test_gateway_check(app_configs, **kwargs):
    """The test gateway credits any amount at once: in production only as an explicit choice."""
    if "test" in settings.PAYMENT_GATEWAYS and not settings.DEBUG and not settings.ALLOW_TEST_GATEWAY:
        return [
            Error(
                gettext("The test payment gateway is enabled with DEBUG off: anyone can top up any amount without paying."),
                hint=gettext('Remove "test" from PAYMENT_GATEWAYS, or set ALLOW_TEST_GATEWAY=1 if this is a public demo.'),
                id="billing.E101",
            )
        ]
    return []


def trusted_proxies_check(app_configs, **kwargs):
    """A mistyped proxy setting leaves every client with the proxy's address: say so when a command starts."""
    try:
        forwarded_client_ip(remote_addr="127.0.0.1", forwarded_for="127.0.0.1")
    except ValueError as error:
        return [
            Error(
                gettext("TRUSTED_PROXIES / TRUSTED_PROXY_COUNT cannot be used: %(error)s") % {"error": error},
                hint=gettext(
                    "TRUSTED_PROXY_COUNT is a number of proxies (0 or more); TRUSTED_PROXIES lists addresses or networks, "
                    "e.g. 127.0.0.1 or 10.0.0.0/8."
                ),
                id="billing.E102",
            )
        ]
    return []


def documents_settings_check(app_configs, **kwargs):
    """Document settings that would make every charge fail (or number two documents alike): refused when a command starts."""
    errors = []
    samples = [("INV", 2026, 1), ("INV", 2026, 2), ("INV", 2027, 1), ("CN", 2026, 1)]
    try:
        numbers = {settings.DOCUMENT_NUMBER_FORMAT.format(series=series, year=year, number=number) for series, year, number in samples}
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        numbers = {f"{error!r}"}
    if len(numbers) != len(samples):
        errors.append(
            Error(
                gettext("DOCUMENT_NUMBER_FORMAT %(format)s does not give every document a number of its own.") % {
                    "format": repr(settings.DOCUMENT_NUMBER_FORMAT)
                },
                hint=gettext("Use {series}, {year} and {number} (e.g. {series}-{year}-{number:05d}): numbers restart every year."),
                id="billing.E103",
            )
        )
    if len({settings.INVOICE_SERIES, settings.CREDIT_NOTE_SERIES, settings.RECEIPT_SERIES}) != 3:
        errors.append(
            Error(gettext("INVOICE_SERIES, CREDIT_NOTE_SERIES and RECEIPT_SERIES must differ."), id="billing.E104")
        )
    try:
        rate = Decimal(settings.BILLING_TAX_RATE)
        valid_rate = rate.is_finite() and 0 <= rate < 100 and rate == rate.quantize(Decimal("0.01"))
    except (InvalidOperation, TypeError, ValueError):
        valid_rate = False
    if not valid_rate:
        errors.append(
            Error(
                gettext("BILLING_TAX_RATE %(rate)s is not a tax rate.") % {"rate": repr(settings.BILLING_TAX_RATE)},
                hint=gettext("A percentage from 0 to 99.99, e.g. 20 or 0 for no tax."),
                id="billing.E105",
            )
        )
    if settings.BILLING_REFUND_ON_CLOSE not in ("none", "prorata"):
        message = gettext("BILLING_REFUND_ON_CLOSE %(value)s is neither none nor prorata.")
        errors.append(Error(message % {"value": repr(settings.BILLING_REFUND_ON_CLOSE)}, id="billing.E106"))
    return errors
