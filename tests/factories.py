from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.choices import BillingPeriod, PanelAction, ProductType, ResourceKind
from billing.models import Client, Service, ServiceResource, TariffPlan, TariffPrice, TariffResource
from ipam_sync.models import IPAssignment, IPmanagerIntegration, SyncChange, SyncRun
from provisioning.models import DataCenter, Operation, OperationAttempt, ProcessingModule


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct-horse-battery")


class StaffUserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Client {n}")
    email = factory.Sequence(lambda n: f"client{n}@example.com")


class DataCenterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataCenter
        django_get_or_create = ["name"]

    name = "Moscow"


class IPmanagerIntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IPmanagerIntegration

    name = factory.Sequence(lambda n: f"IPmanager {n}")
    url = "https://ip.example.com:1500/ipmgr"
    username = "billing"
    password = "ipmgr-secret"


class ProcessingModuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProcessingModule

    product_type = ProductType.VHOST
    name = factory.Sequence(lambda n: f"ISPmanager {n}")
    url = "https://panel.example.com:1500/ispmgr"
    username = "admin"
    password = "panel-secret"
    data_center = factory.SubFactory(DataCenterFactory)


class TariffPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TariffPlan
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Tariff {n}")
    product_type = ProductType.VHOST
    processing_module = factory.SubFactory(ProcessingModuleFactory, product_type=factory.SelfAttribute("..product_type"))
    account_template = "Site hosting"

    @factory.post_generation
    def monthly_price(obj, create, extracted, **kwargs):
        """A monthly price (300.00 unless given); `monthly_price=False` for a tariff without one."""
        if create and extracted is not False:
            TariffPrice.objects.create(tariff=obj, period=BillingPeriod.MONTH, price=extracted or Decimal("300.00"))


class TariffPriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TariffPrice

    tariff = factory.SubFactory(TariffPlanFactory, monthly_price=False)
    period = BillingPeriod.MONTH
    price = Decimal("300.00")


class TariffResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TariffResource

    tariff = factory.SubFactory(TariffPlanFactory)
    kind = ResourceKind.DATABASES
    included = 10
    unit_price = Decimal("20.00")
    max_quantity = 50


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    client = factory.SubFactory(ClientFactory)
    tariff = factory.SubFactory(TariffPlanFactory)
    domain = factory.Sequence(lambda n: f"site{n}.example.com")


class ServiceResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServiceResource

    service = factory.SubFactory(ServiceFactory)
    kind = ResourceKind.DATABASES
    quantity = 10


class IPAssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IPAssignment

    integration = factory.SubFactory(IPmanagerIntegrationFactory)
    service = factory.SubFactory(ServiceFactory)
    address = factory.Sequence(lambda n: f"133.31.{n // 250}.{n % 250 + 1}")


class OperationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Operation

    service = factory.SubFactory(ServiceFactory)
    action = PanelAction.OPEN


class OperationAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OperationAttempt

    operation = factory.SubFactory(OperationFactory)
    number = factory.Sequence(lambda n: n + 1)
    worker = "worker-1"
    started_at = factory.LazyFunction(timezone.now)
    heartbeat_at = factory.SelfAttribute("started_at")
    lease_until = factory.LazyAttribute(lambda attempt: attempt.started_at + timedelta(minutes=5))


class SyncRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncRun

    integration = factory.SubFactory(IPmanagerIntegrationFactory)
    status = SyncRun.Status.DONE


class SyncChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SyncChange

    run = factory.SubFactory(SyncRunFactory)
    action = SyncChange.Action.RELEASE
    address = factory.Sequence(lambda n: f"133.31.{n // 250}.{n % 250 + 1}")
    result = SyncChange.Result.DONE
