"""Demo data for `make run`: run it as often as you like, it converges on the same rows."""

from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext_noop

from billing.choices import BillingPeriod, Currency, LedgerEntryKind, ProductType, ResourceKind
from billing.models import Client, TariffPlan, TariffPrice, TariffResource
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from billing.stored_text import StoredText
from ipam_sync.models import IPmanagerIntegration
from provisioning.models import DataCenter, ProcessingModule

# Where `make run` starts the panel emulators.
ISPMANAGER_URL = "http://127.0.0.1:1500/ispmgr"
IPMANAGER_URL = "http://127.0.0.1:1501/ipmgr"

ADMIN_LOGIN, ADMIN_PASSWORD = "admin", "admin"
CLIENT_LOGIN, CLIENT_PASSWORD = "client@example.com", "client"

TARIFFS = [
    {
        "name_en": "Site hosting",
        "name_ru": "Хостинг сайтов",
        "product_type": ProductType.VHOST,
        "account_template": "Site hosting",
        "allow_dedicated_ip": True,
        "ordering": 10,
        "prices": {BillingPeriod.MONTH: "300.00", BillingPeriod.QUARTER: "850.00", BillingPeriod.YEAR: "3000.00"},
        "setup_fee": "0.00",
        # The seed's example: the template allows 25 databases, the tariff includes 10.
        "resources": [
            (ResourceKind.DATABASES, 10, "20.00", 50),
            (ResourceKind.DISK, 5120, "0.10", 51200),
            (ResourceKind.DEDICATED_IPV4, 0, "150.00", 2),
        ],
    },
    {
        "name_en": "FTP storage 10 GB",
        "name_ru": "FTP-хранилище 10 ГБ",
        "product_type": ProductType.STORAGE,
        "account_template": "FTP storage",
        "allow_dedicated_ip": False,
        "ordering": 20,
        "prices": {BillingPeriod.MONTH: "150.00", BillingPeriod.YEAR: "1500.00"},
        "setup_fee": "100.00",
        "resources": [
            (ResourceKind.DISK, 10240, "0.02", 102400),
            (ResourceKind.FTP_USERS, 3, "10.00", 20),
        ],
    },
]


class Command(BaseCommand):
    help = "Create or refresh the demo: an admin, a client with a balance, panels pointing at the emulators, tariffs."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even with DEBUG off (it creates admin/admin).")

    @transaction.atomic
    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError("DEBUG is off: the demo's well-known logins have no place in production. Use --force to insist.")
        user_model = get_user_model()
        admin, created = user_model.objects.get_or_create(
            username=ADMIN_LOGIN, defaults={"email": "admin@example.com", "is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(ADMIN_PASSWORD)
            admin.save()
        client_user, created = user_model.objects.get_or_create(username=CLIENT_LOGIN, defaults={"email": CLIENT_LOGIN})
        if created:
            client_user.set_password(CLIENT_PASSWORD)
            client_user.save()
        client, _ = Client.objects.get_or_create(email=CLIENT_LOGIN, defaults={"name": "Demo Client", "currency": Currency.RUB})
        client.users.add(client_user)
        ledger_entry_add(
            client=client,
            kind=LedgerEntryKind.TOPUP,
            amount=Decimal("5000.00"),
            reference=StoredText(gettext_noop("Demo balance")),
            created_by=admin,
            idempotency_key="demo-initial-topup",
        )

        department, _ = Group.objects.get_or_create(name="Hosting support")
        department.user_set.add(admin)
        data_center, _ = DataCenter.objects.get_or_create(name="Demo data center")
        ipmanager, _ = IPmanagerIntegration.objects.update_or_create(
            name="Demo IPmanager",
            defaults={"url": IPMANAGER_URL, "username": "billing", "password": "billing-demo"},
        )
        modules = {}
        for product_type, name in [
            (ProductType.VHOST, "ISPmanager Business (demo)"),
            (ProductType.STORAGE, "ISPmanager FTP storage (demo)"),
        ]:
            modules[product_type], _ = ProcessingModule.objects.update_or_create(
                name=name,
                defaults={
                    "product_type": product_type,
                    "url": ISPMANAGER_URL,
                    "username": "root",
                    "password": "ispmgr-demo",
                    "data_center": data_center,
                    "department": department,
                    "ipmanager": ipmanager if product_type == ProductType.VHOST else None,
                },
            )

        for spec in TARIFFS:
            tariff, _ = TariffPlan.objects.update_or_create(
                name_en=spec["name_en"],
                defaults={
                    "name_ru": spec["name_ru"],
                    "product_type": spec["product_type"],
                    "processing_module": modules[spec["product_type"]],
                    "account_template": spec["account_template"],
                    "allow_dedicated_ip": spec["allow_dedicated_ip"],
                    "setup_fee": Decimal(spec["setup_fee"]),
                    "ordering": spec["ordering"],
                    "currency": Currency.RUB,
                },
            )
            for period, price in spec["prices"].items():
                TariffPrice.objects.update_or_create(tariff=tariff, period=period, defaults={"price": Decimal(price)})
            for kind, included, unit_price, max_quantity in spec["resources"]:
                TariffResource.objects.update_or_create(
                    tariff=tariff,
                    kind=kind,
                    defaults={"included": included, "unit_price": Decimal(unit_price), "max_quantity": max_quantity},
                )

        self.stdout.write(
            self.style.SUCCESS("Demo data ready.")
            + f"\n  Admin:  http://127.0.0.1:8000/admin/  login {ADMIN_LOGIN} / {ADMIN_PASSWORD}"
            + f"\n  Client: login {CLIENT_LOGIN} / {CLIENT_PASSWORD} (balance {client_balance(client=client)} {client.currency})"
        )
