"""The API's money: clients and balance, the ledger, payments, documents (with PDFs and refunds), events."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from billing.api.tokens import token_create
from billing.choices import DocumentKind, LedgerEntryKind, PaymentStatus
from billing.models import Document, IdempotencyRecord, LedgerEntry, Payment
from billing.payments import payment_start
from billing.services import ledger_entry_add
from billing.webhooks.models import WebhookEvent
from tests.factories import ClientFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def bearer(user, scopes=("read", "write")) -> APIClient:
    _, plaintext = token_create(user=user, name="test", scopes=list(scopes))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return api


def client_with_user(**fields):
    user = UserFactory()
    client = ClientFactory(**fields)
    client.users.add(user)
    return client, user


def staff_with(*codenames):
    """A staff user (not a superuser) holding only these billing permissions."""
    user = StaffUserFactory(is_superuser=False)
    for codename in codenames:
        app_label, _, name = codename.partition(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=name))
    return user


def post(api, url, body, key="k1", **extra):
    return api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


def topup(client, amount, reference="Bank"):
    return ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal(amount), reference=reference)


def charge(client, amount, reference="Hosting"):
    return ledger_entry_add(client=client, kind=LedgerEntryKind.CHARGE, amount=Decimal(amount), reference=reference)


@pytest.fixture
def staff(staff_user):
    return bearer(staff_user)


@pytest.fixture
def alice():
    client, user = client_with_user(name="Alice", email="alice@example.com")
    return client, bearer(user)


@pytest.fixture
def bob():
    client, user = client_with_user(name="Bob", email="bob@example.com")
    return client, bearer(user)


# Clients and balance


def test_staff_list_clients_with_their_balance_filtered_and_ordered(staff, alice, bob):
    topup(alice[0], "100.00")
    charge(alice[0], "30.00")
    topup(bob[0], "5.50")

    listed = staff.get("/api/v1/clients?ordering=-balance").json()

    assert [(row["name"], row["balance"]) for row in listed["results"]] == [("Alice", "70.00"), ("Bob", "5.50")]
    assert staff.get("/api/v1/clients?email=BOB@example.com").json()["count"] == 1
    detail = staff.get(f"/api/v1/clients/{bob[0].pk}").json()
    assert (detail["email"], detail["balance"], detail["currency"]) == ("bob@example.com", "5.50", "RUB")


def test_clients_are_staff_only_and_need_the_view_permission(alice):
    client, api = alice
    assert api.get("/api/v1/clients").status_code == 403
    assert api.get(f"/api/v1/clients/{client.pk}").status_code == 403
    answer = bearer(staff_with()).get("/api/v1/clients")
    assert answer.status_code == 403
    assert answer.json()["message"] == "Your account lacks the permission “billing.view_client”."
    assert bearer(staff_with("billing.view_client")).get("/api/v1/clients").status_code == 200


def test_a_client_reads_its_own_balance(alice, bob):
    topup(alice[0], "12.34")
    topup(bob[0], "99.00")

    assert alice[1].get("/api/v1/balance").json() == {"client": alice[0].pk, "balance": "12.34", "currency": "RUB"}


def test_a_user_without_a_client_account_has_no_balance(staff):
    answer = staff.get("/api/v1/balance")
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")


# The ledger


def test_a_client_sees_only_its_own_ledger_newest_first(alice, bob):
    first = topup(alice[0], "10.00")
    second = charge(alice[0], "4.00")
    topup(bob[0], "50.00")

    rows = alice[1].get("/api/v1/ledger").json()["results"]

    assert [(row["id"], row["kind"], row["amount"]) for row in rows] == [(second.pk, "charge", "-4.00"), (first.pk, "topup", "10.00")]
    assert rows[0]["document_number"] == second.document.number
    # Another client's id in the filter finds nothing: the rows are the token's client's, whatever is asked.
    assert alice[1].get(f"/api/v1/ledger?client={bob[0].pk}").json()["results"] == []


def test_staff_filter_the_ledger_by_client_and_kind_and_page_with_a_cursor(staff, alice, bob):
    for amount in ("1.00", "2.00", "3.00"):
        topup(alice[0], amount)
    topup(bob[0], "9.00")

    page = staff.get(f"/api/v1/ledger?client={alice[0].pk}&kind=topup&page_size=2").json()

    assert [row["amount"] for row in page["results"]] == ["3.00", "2.00"]
    rest = staff.get(page["next"]).json()
    assert [row["amount"] for row in rest["results"]] == ["1.00"]
    assert rest["next"] is None


def test_staff_top_up_a_client_once_per_idempotency_key(staff, alice):
    body = {"client": alice[0].pk, "kind": "topup", "amount": "25.00", "reference": "Cash at the office"}

    first = post(staff, "/api/v1/ledger", body)
    again = post(staff, "/api/v1/ledger", body)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert (first.json()["kind"], first.json()["amount"], first.json()["reference"]) == ("topup", "25.00", "Cash at the office")
    entry = LedgerEntry.objects.get()
    assert entry.document.kind == DocumentKind.RECEIPT  # the service's receipt, as the admin's top-up makes
    other = post(staff, "/api/v1/ledger", {**body, "amount": "26.00"})
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert LedgerEntry.objects.count() == 1


def test_staff_adjust_a_balance_down(staff, alice):
    topup(alice[0], "10.00")
    answer = post(staff, "/api/v1/ledger", {"client": alice[0].pk, "kind": "adjustment", "amount": "-3.50"})
    assert (answer.status_code, answer.json()["amount"]) == (201, "-3.50")
    assert alice[1].get("/api/v1/balance").json()["balance"] == "6.50"


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"amount": "0"}, None, "An adjustment cannot be zero."),
        ({"kind": "topup", "amount": "-5.00"}, None, "The amount must be greater than zero."),
        ({"kind": "charge"}, "kind", '"charge" is not a valid choice.'),
        ({"amount": "1.234"}, "amount", "Ensure that there are no more than 2 decimal places."),
        ({"client": 999999}, "client", 'Invalid pk "999999" - object does not exist.'),
    ],
)
def test_a_bad_ledger_entry_is_refused_with_its_reason_and_nothing_is_added(staff, alice, change, field, message):
    body = {"client": alice[0].pk, "kind": "adjustment", "amount": "5.00", **change}

    answer = post(staff, "/api/v1/ledger", body)

    assert answer.status_code == 400
    if field:
        assert answer.json()["fields"][field] == [message]
    else:
        assert answer.json()["message"] == message
    assert not LedgerEntry.objects.exists()
    assert not IdempotencyRecord.objects.exists()  # the key is free again for the corrected request


def test_a_services_message_is_in_the_requests_language(staff, alice):
    answer = post(staff, "/api/v1/ledger", {"client": alice[0].pk, "kind": "adjustment", "amount": "0"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert answer.status_code == 400
    assert answer.json()["message"] == "Сумма корректировки не может быть нулевой."


def test_a_ledger_post_needs_an_idempotency_key(staff, alice):
    answer = staff.post("/api/v1/ledger", {"client": alice[0].pk, "kind": "topup", "amount": "5.00"}, format="json")
    assert (answer.status_code, answer.json()["code"]) == (400, "idempotency_key_missing")
    assert not LedgerEntry.objects.exists()


def test_only_staff_with_the_admins_permission_add_ledger_entries(staff_user, alice):
    body = {"client": alice[0].pk, "kind": "topup", "amount": "5.00"}
    assert post(alice[1], "/api/v1/ledger", body).status_code == 403
    assert post(bearer(staff_user, scopes=["read"]), "/api/v1/ledger", body).status_code == 403
    viewer = staff_with("billing.view_ledgerentry")
    assert post(bearer(viewer), "/api/v1/ledger", body).status_code == 403
    assert not LedgerEntry.objects.exists()
    assert post(bearer(staff_with("billing.add_ledgerentry")), "/api/v1/ledger", body).status_code == 201


# Payments


def test_a_client_starts_a_bank_transfer_and_is_told_how_to_pay(alice):
    answer = post(alice[1], "/api/v1/payments", {"gateway": "manual", "amount": "500.00"})

    assert answer.status_code == 201
    payment = Payment.objects.get()
    body = answer.json()
    assert (body["id"], body["client"], body["status"], body["amount"], body["redirect_url"]) == (
        payment.pk,
        alice[0].pk,
        "pending",
        "500.00",
        "",
    )
    assert f"Payment reference: {payment.reference}" in body["instructions"]
    assert post(alice[1], "/api/v1/payments", {"gateway": "manual", "amount": "500.00"}).json() == body
    assert Payment.objects.count() == 1


def test_a_gateway_that_pays_at_once_answers_paid_and_credits_once(settings, alice):
    settings.PAYMENT_GATEWAYS = ["manual", "test"]
    answer = post(alice[1], "/api/v1/payments", {"gateway": "test", "amount": "20.00"})
    assert (answer.status_code, answer.json()["status"], answer.json()["instructions"]) == (201, "paid", "Test payment received.")
    assert alice[1].get("/api/v1/balance").json()["balance"] == "20.00"


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"gateway": "card", "amount": "10.00"}, "gateway", "Choose one of the payment methods offered."),
        ({"gateway": "manual", "amount": "0.50"}, "amount", "Enter an amount from 1.00 to 1000000.00."),
        ({"gateway": "manual"}, "amount", "This field is required."),
    ],
)
def test_a_bad_payment_is_refused_with_the_services_message(alice, body, field, message):
    answer = post(alice[1], "/api/v1/payments", body)
    assert (answer.status_code, answer.json()["fields"]) == (400, {field: [message]})
    assert not Payment.objects.exists()


def test_staff_start_a_payment_for_a_client_they_name(staff, alice):
    missing = post(staff, "/api/v1/payments", {"gateway": "manual", "amount": "10.00"})
    assert (missing.status_code, missing.json()["fields"]) == (400, {"client": ["Choose the client to top up."]})
    answer = post(staff, "/api/v1/payments", {"gateway": "manual", "amount": "10.00", "client": alice[0].pk}, key="k2")
    assert (answer.status_code, answer.json()["client"]) == (201, alice[0].pk)


def test_staff_confirm_a_payment_once_and_the_balance_is_credited_once(staff, alice):
    payment, _ = payment_start(client=alice[0], gateway_code="manual", amount="75.00")

    answer = post(staff, f"/api/v1/payments/{payment.pk}/confirm", None)
    again = post(staff, f"/api/v1/payments/{payment.pk}/confirm", None, key="k2")

    assert (answer.status_code, answer.json()["status"]) == (200, "paid")
    assert (again.status_code, again.json()["code"]) == (400, "already_paid")
    assert again.json()["message"] == f"Payment {payment.reference} is already confirmed: nothing was credited again."
    assert alice[1].get("/api/v1/balance").json()["balance"] == "75.00"
    assert WebhookEvent.objects.filter(type="payment.confirmed").count() == 1


def test_staff_cancel_a_pending_payment_and_not_a_paid_one(staff, alice):
    payment, _ = payment_start(client=alice[0], gateway_code="manual", amount="75.00")

    answer = staff.post(f"/api/v1/payments/{payment.pk}/cancel")
    again = staff.post(f"/api/v1/payments/{payment.pk}/cancel")

    assert (answer.status_code, answer.json()["status"]) == (200, "cancelled")
    assert (again.status_code, again.json()["message"]) == (400, "Only a payment awaiting payment can be cancelled.")
    refused = post(staff, f"/api/v1/payments/{payment.pk}/confirm", None)
    assert (refused.status_code, refused.json()["message"]) == (400, f"Payment {payment.reference} was cancelled.")
    assert not LedgerEntry.objects.exists()


def test_clients_neither_confirm_nor_see_others_payments(alice, bob):
    mine, _ = payment_start(client=alice[0], gateway_code="manual", amount="10.00")
    theirs, _ = payment_start(client=bob[0], gateway_code="manual", amount="10.00")

    assert post(alice[1], f"/api/v1/payments/{mine.pk}/confirm", None).status_code == 403
    assert alice[1].post(f"/api/v1/payments/{mine.pk}/cancel").status_code == 403
    assert alice[1].get(f"/api/v1/payments/{theirs.pk}").status_code == 404
    assert [row["id"] for row in alice[1].get("/api/v1/payments").json()["results"]] == [mine.pk]
    assert Payment.objects.get(pk=mine.pk).status == PaymentStatus.PENDING


def test_staff_without_the_change_permission_cannot_confirm(alice):
    payment, _ = payment_start(client=alice[0], gateway_code="manual", amount="10.00")
    viewer = bearer(staff_with("billing.view_payment"))
    assert viewer.get(f"/api/v1/payments/{payment.pk}").status_code == 200
    assert post(viewer, f"/api/v1/payments/{payment.pk}/confirm", None).status_code == 403
    assert not LedgerEntry.objects.exists()


# Documents


def test_a_client_lists_reads_and_downloads_its_own_documents(alice, bob):
    receipt = topup(alice[0], "100.00").document
    invoice = charge(alice[0], "40.00").document
    others = topup(bob[0], "5.00").document

    listed = alice[1].get("/api/v1/documents").json()["results"]
    assert [(row["number"], row["kind"], row["gross"]) for row in listed] == [
        (invoice.number, "invoice", "40.00"),
        (receipt.number, "receipt", "100.00"),
    ]
    assert [row["number"] for row in alice[1].get("/api/v1/documents?kind=receipt").json()["results"]] == [receipt.number]
    detail = alice[1].get(f"/api/v1/documents/{invoice.pk}").json()
    assert [(line["description"], line["gross"]) for line in detail["lines"]] == [("Hosting", "40.00")]
    assert (detail["refunded"], detail["refundable"]) == ("0.00", "40.00")
    pdf = alice[1].get(f"/api/v1/documents/{invoice.pk}/pdf", HTTP_ACCEPT="application/pdf")
    assert (pdf.status_code, pdf["Content-Type"]) == (200, "application/pdf")
    assert pdf.content.startswith(b"%PDF")
    assert alice[1].get(f"/api/v1/documents/{others.pk}").status_code == 404
    missing = alice[1].get(f"/api/v1/documents/{others.pk}/pdf", HTTP_ACCEPT="application/pdf")
    assert (missing.status_code, missing["Content-Type"], missing.json()["code"]) == (404, "application/json", "not_found")


def test_staff_refund_part_of_an_invoice_once_per_key(staff, alice):
    topup(alice[0], "100.00")
    invoice = charge(alice[0], "40.00").document

    answer = post(staff, f"/api/v1/documents/{invoice.pk}/refund", {"amount": "15.00", "reason": "Downtime"})
    again = post(staff, f"/api/v1/documents/{invoice.pk}/refund", {"amount": "15.00", "reason": "Downtime"})

    assert answer.status_code == again.status_code == 201
    assert again.json() == answer.json()
    note = Document.objects.get(kind=DocumentKind.CREDIT_NOTE)
    assert (answer.json()["number"], answer.json()["corrects"], answer.json()["gross"]) == (note.number, invoice.pk, "-15.00")
    assert alice[1].get("/api/v1/balance").json()["balance"] == "75.00"
    assert staff.get(f"/api/v1/documents/{invoice.pk}").json()["refundable"] == "25.00"


def test_an_over_refund_is_refused_with_the_services_message(staff, alice):
    topup(alice[0], "100.00")
    invoice = charge(alice[0], "40.00").document

    answer = post(staff, f"/api/v1/documents/{invoice.pk}/refund", {"amount": "40.01"})

    assert (answer.status_code, answer.json()["code"]) == (400, "too_much")
    assert answer.json()["message"] == f"At most 40.00\xa0RUB of {invoice.number} is left to refund."
    assert not Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).exists()
    assert alice[1].get("/api/v1/balance").json()["balance"] == "60.00"


def test_only_an_invoice_is_refunded(staff, alice):
    receipt = topup(alice[0], "100.00").document
    answer = post(staff, f"/api/v1/documents/{receipt.pk}/refund", {"amount": "1.00"})
    assert (answer.status_code, answer.json()["message"]) == (400, "Only an invoice can be refunded.")
    assert LedgerEntry.objects.count() == 1


def test_refunds_need_staff_with_the_ledger_permission(alice):
    topup(alice[0], "100.00")
    invoice = charge(alice[0], "40.00").document
    assert post(alice[1], f"/api/v1/documents/{invoice.pk}/refund", {"amount": "1.00"}).status_code == 403
    viewer = bearer(staff_with("billing.view_document"))
    assert post(viewer, f"/api/v1/documents/{invoice.pk}/refund", {"amount": "1.00"}).status_code == 403
    assert not Document.objects.filter(kind=DocumentKind.CREDIT_NOTE).exists()


# Events


def test_staff_poll_events_by_type_newest_first(staff, alice):
    first = payment_start(client=alice[0], gateway_code="manual", amount="10.00")[0]
    second = payment_start(client=alice[0], gateway_code="manual", amount="20.00")[0]
    for payment in (first, second):
        post(staff, f"/api/v1/payments/{payment.pk}/confirm", None, key=f"confirm-{payment.pk}")

    rows = staff.get("/api/v1/events?type=payment.confirmed").json()["results"]

    assert [(row["type"], row["data"]["reference"]) for row in rows] == [
        ("payment.confirmed", second.reference),
        ("payment.confirmed", first.reference),
    ]
    assert rows[0]["event_id"].startswith("msg_")
    assert staff.get("/api/v1/events?type=sync.finished").json()["results"] == []


def test_events_are_staff_only(alice):
    assert alice[1].get("/api/v1/events").status_code == 403
    assert bearer(staff_with()).get("/api/v1/events").status_code == 403


# Every list's queries, with 200 rows


@pytest.fixture
def two_hundred(alice):
    """200 of Alice's ledger entries (with receipts), payments and events."""
    for n in range(100):
        topup(alice[0], f"{n + 1}.00")
    for _ in range(200):
        payment_start(client=alice[0], gateway_code="manual", amount="5.00")
    WebhookEvent.objects.bulk_create(WebhookEvent(type="payment.confirmed", data={"n": n}) for n in range(200))
    for _ in range(100):
        charge(alice[0], "1.00")
    return alice


# Token lookup 1; the page 1 (a cursor page has no count); a client's token adds its client 1; a page-numbered list adds its count 1.
@pytest.mark.parametrize(
    "url, as_staff, queries",
    [
        ("/api/v1/clients?page_size=200", True, 3),
        ("/api/v1/ledger?page_size=200", True, 2),
        ("/api/v1/ledger?page_size=200", False, 3),
        ("/api/v1/payments?page_size=200", True, 3),
        ("/api/v1/payments?page_size=200", False, 4),
        ("/api/v1/documents?page_size=200", True, 3),
        ("/api/v1/documents?page_size=200", False, 4),
        ("/api/v1/events?page_size=200", True, 2),
    ],
)
def test_each_list_reads_200_rows_in_a_fixed_number_of_queries(staff, two_hundred, django_assert_num_queries, url, as_staff, queries):
    api = staff if as_staff else two_hundred[1]
    ClientFactory.create_batch(199)
    api.get("/api/v1/me")  # the token's first use records its time: not counted

    with django_assert_num_queries(queries):
        answer = api.get(url)

    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 200
