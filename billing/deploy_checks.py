"""System checks for access settings (registered in BillingConfig.ready): the test payment gateway, the trusted proxies."""

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
