"""Dedicated IPs end to end: billing, the IPmanager emulator (the seed's) and the ISPmanager emulator, over HTTP.

`ipmanager` (tests/conftest.py) is the seed's IPmanager: network 133.31.223.0/24, user billing / secret
who may take 133.31.223.0-133.31.223.128 in the group alias, administrator admin / secret.
"""

from decimal import Decimal

import pytest

from billing.choices import ProductType, ResourceKind
from billing.models import ServiceResource
from ipam_sync.models import IPAssignment
from tests.factories import (
    ClientFactory,
    IPmanagerIntegrationFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffResourceFactory,
    UserFactory,
)

NETWORK = "133.31.223."
POOL_SIZE = 129  # 133.31.223.0-133.31.223.128


def pool_address(n: int) -> str:
    return f"{NETWORK}{n}"


def in_pool(address: str) -> bool:
    return address.startswith(NETWORK) and 0 <= int(address.rsplit(".", 1)[1]) <= POOL_SIZE - 1


@pytest.fixture
def ipm(ipmanager):
    """The IPmanager emulator's state (allocated addresses, users, faults)."""
    return ipmanager.app


@pytest.fixture
def integration(ipmanager, db):
    """The seed's integration: IPmanager user billing / secret, no administrator credentials."""
    return IPmanagerIntegrationFactory(name="IPmanager Moscow", url=ipmanager.url, username="billing", password="secret")


@pytest.fixture
def as_admin(integration):
    """Give the integration the IPmanager administrator's credentials (admin / secret)."""

    def give(target=None):
        target = target or integration
        target.admin_username, target.admin_password = "admin", "secret"
        target.save()
        return target

    return give


@pytest.fixture
def panel(ispmanager):
    ispmanager.app.add_preset("Site hosting", limit_db=25, limit_webdomains=25)
    return ispmanager


@pytest.fixture
def module(panel, integration, transactional_db):
    """ISPmanager Business taking dedicated IPs from the seed's IPmanager."""
    return ProcessingModuleFactory(
        url=panel.url, username="root", password="secret", product_type=ProductType.VHOST, ipmanager=integration, edition="business"
    )


@pytest.fixture
def tariff(module):
    """Dedicated IPs may be ordered: none included, 150.00 each, at most 2."""
    tariff = TariffPlanFactory(
        processing_module=module, product_type=ProductType.VHOST, account_template="Site hosting", allow_dedicated_ip=True
    )
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DEDICATED_IPV4, included=0, unit_price=Decimal("150.00"), max_quantity=2)
    return tariff


@pytest.fixture
def make_service(tariff):
    """An ordered service of the tariff with `ips` dedicated IPv4 addresses."""

    def make(ips=1, **fields):
        client = fields.pop("client", None) or ClientFactory()
        user = UserFactory()
        client.users.add(user)
        service = ServiceFactory(client=client, tariff=fields.pop("tariff", tariff), ordered_by=user, **fields)
        ServiceResource.objects.create(service=service, kind=ResourceKind.DEDICATED_IPV4, quantity=ips)
        return service

    return make


@pytest.fixture
def live_assignment(integration):
    """A live IPAssignment of a (new) service in billing, with nothing done in IPmanager."""

    def make(address, *, ip_type="alias", service=None, target=None):
        service = service or ServiceFactory()
        return IPAssignment.objects.create(integration=target or integration, service=service, address=address, ip_type=ip_type)

    return make
