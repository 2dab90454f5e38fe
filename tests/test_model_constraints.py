from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.choices import BillingPeriod, ResourceKind
from billing.models import TariffPrice, TariffResource
from ipam_sync.models import IPAssignment
from tests.factories import IPAssignmentFactory, ServiceFactory, TariffPlanFactory, TariffResourceFactory

pytestmark = pytest.mark.django_db


def _refused(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_a_resource_kind_appears_once_per_tariff():
    resource = TariffResourceFactory(kind=ResourceKind.DATABASES)
    _refused(lambda: TariffResource.objects.create(tariff=resource.tariff, kind=ResourceKind.DATABASES, included=1))
    assert resource.tariff.resources.count() == 1


def test_one_price_per_period_and_no_negative_money():
    tariff = TariffPlanFactory()
    _refused(lambda: TariffPrice.objects.create(tariff=tariff, period=BillingPeriod.MONTH, price=Decimal("1")))
    _refused(lambda: TariffPrice.objects.create(tariff=tariff, period=BillingPeriod.YEAR, price=Decimal("-1")))
    _refused(lambda: TariffResource.objects.create(tariff=tariff, kind=ResourceKind.DISK, unit_price=Decimal("-0.01")))
    _refused(lambda: TariffResource.objects.create(tariff=tariff, kind=ResourceKind.DISK, included=10, max_quantity=5))
    tariff.setup_fee = Decimal("-5")
    _refused(tariff.save)


def test_an_address_is_held_by_at_most_one_live_service():
    first = IPAssignmentFactory(address="133.31.223.10")
    other_service = ServiceFactory()
    _refused(lambda: IPAssignment.objects.create(integration=first.integration, service=other_service, address="133.31.223.10"))

    first.released_at = timezone.now()
    first.save()
    again = IPAssignment.objects.create(integration=first.integration, service=other_service, address="133.31.223.10")
    assert again.ip_type == "alias"
    assert IPAssignment.objects.filter(address="133.31.223.10").count() == 2
