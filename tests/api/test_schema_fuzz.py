"""The API fuzzed against its own OpenAPI schema (schemathesis): every operation, as staff and as a client.

Each operation gets generated requests, valid and invalid, on a database holding real objects of both
kinds of user (services, ledger entries, documents, payments, operations, addresses). Generated object
ids are mostly steered to those real objects, so that actions run on something, not only into 404s.
Every answer must be documented: no 5xx, its status code listed for the operation, its body matching the
listed schema, its content type the documented one. Runs in-process through WSGI, inside the test's
transaction, with throttling off for these tests only.
"""

from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing.api.tokens import token_create
from billing.choices import BillingPeriod, LedgerEntryKind, ResourceKind
from billing.models import Document, LedgerEntry, Payment, Service
from billing.payments import payment_start
from billing.services import client_register, ledger_entry_add, order_place, service_pay
from tests.factories import (
    ClientFactory,
    IPAssignmentFactory,
    OperationFactory,
    ServiceFactory,
    StaffUserFactory,
    SyncRunFactory,
    TariffPlanFactory,
    TariffResourceFactory,
)

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Small and fixed: CI runs the suite twice (SQLite, PostgreSQL) and a failure must reproduce.
FUZZ_SETTINGS = settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
# A generated id is kept as it is once in this many times (mostly a 404); otherwise it names a real object.
KEEP_GENERATED_ID_ONE_IN = 4
# The fields of request bodies that name objects, and the path segment their objects live under.
BODY_REFERENCES = {"tariff": "tariffs", "client": "clients", "service": "services", "payment": "payments"}


@pytest.fixture
def keep_test_connection():
    """The WSGI app closes the database connection after each request, which would end the test's transaction
    (on PostgreSQL): as Django's test client does, it does not while the test runs."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def fuzz_world(db, settings, keep_test_connection):
    """Objects of a client and of another client, and a staff user; returns the known ids per resource path."""
    settings.API_THROTTLE_RATE = ""
    settings.API_THROTTLE_ANON_RATE = ""
    staff = StaffUserFactory(username="fuzz-staff@example.com")
    mine = client_register(email="fuzz-client@example.com", name="Fuzz client", password="correct-horse-battery", language="en")
    other = ClientFactory()
    tariff = TariffPlanFactory(monthly_price=Decimal("300.00"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=1, unit_price=Decimal("20.00"), max_quantity=5)
    for client in (mine, other):
        ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal("5000.00"), reference="Fuzz top-up")
        ordered = order_place(client=client, user=staff, tariff=tariff, period=BillingPeriod.MONTH, domain=f"fuzz{client.pk}.example.com")
        paid = order_place(client=client, user=staff, tariff=tariff, period=BillingPeriod.MONTH, domain=f"paid{client.pk}.example.com")
        service_pay(service=paid)
        active = ServiceFactory(client=client, tariff=tariff, status="active")
        OperationFactory(service=active)
        IPAssignmentFactory(service=active)
        payment_start(client=client, gateway_code=_gateway(), amount=Decimal("100.00"))
        assert ordered.pk
    SyncRunFactory()
    known = {
        "tariffs": [tariff.pk],
        "clients": [mine.pk, other.pk],
        "services": list(Service.objects.order_by("pk").values_list("pk", flat=True)),
        "ledger": list(LedgerEntry.objects.order_by("pk").values_list("pk", flat=True)),
        "payments": list(Payment.objects.order_by("pk").values_list("pk", flat=True)),
        "documents": list(Document.objects.order_by("pk").values_list("pk", flat=True)),
    }
    known["invoices"] = known["credit-notes"] = known["documents"]
    for path, model in _models().items():
        known[path] = list(model.objects.order_by("pk").values_list("pk", flat=True))
    staff_token = token_create(user=staff, name="fuzz staff", scopes=["read", "write", "secrets"])[1]
    client_token = token_create(user=mine.users.get(), name="fuzz client", scopes=["read", "write", "secrets"])[1]
    return {"known": known, "tokens": {"staff": staff_token, "client": client_token}}


def _gateway() -> str:
    from django.conf import settings as django_settings

    return next(iter(django_settings.PAYMENT_GATEWAYS))


def _models() -> dict:
    from ipam_sync.models import IPAssignment, SyncRun
    from provisioning.models import Operation

    return {"operations": Operation, "ip-assignments": IPAssignment, "sync-runs": SyncRun}


def _steer(case, known: dict) -> None:
    """Point most generated ids at real objects: the resource is the path segment before `{id}`."""
    segments = case.operation.path.strip("/").split("/")
    for name, value in (case.path_parameters or {}).items():
        placeholder = "{" + name + "}"
        if placeholder not in segments or segments.index(placeholder) == 0:
            continue
        ids = known.get(segments[segments.index(placeholder) - 1])
        if ids and isinstance(value, int) and value % KEEP_GENERATED_ID_ONE_IN:
            case.path_parameters[name] = ids[value % len(ids)]
    if isinstance(case.body, dict):
        for field, resource in BODY_REFERENCES.items():
            value = case.body.get(field)
            ids = known.get(resource)
            if ids and isinstance(value, int) and not isinstance(value, bool) and value % KEEP_GENERATED_ID_ONE_IN:
                case.body[field] = ids[value % len(ids)]


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_answers_as_its_schema_says(case, fuzz_world):
    _steer(case, fuzz_world["known"])
    # Staff reach every rule, so they get every case; a client's token gets the random ones (its own and
    # others' objects) but not the coverage phase's hundreds of malformed values, which the same checks refuse.
    users = ["staff", "client"] if case.meta is None or case.meta.phase.name != "coverage" else ["staff"]
    for who in users:
        try:
            case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_world['tokens'][who]}"}, checks=CHECKS)
        except Exception as error:
            error.add_note(f"(with the {who} token)")
            raise
