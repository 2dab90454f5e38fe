"""A client sees and touches only its own services."""

from decimal import Decimal

from playwright.sync_api import expect

from billing.choices import ServiceStatus
from billing.models import LedgerEntry, Service
from billing.services import order_place
from provisioning.models import Operation
from tests.browser.helpers import PASSWORD, client_create, logout_button


def test_another_clients_service_is_a_404_page_and_nothing_changes(page, catalog):
    # Given a client with an ordered, unpaid service and money to pay for it.
    owner = client_create(email="owner@example.com", balance=Decimal("1000.00"))
    service = order_place(client=owner, user=owner.users.get(), tariff=catalog.hosting, period=1, domain="owner.example.com")
    # And a second client who has just signed up.
    page.goto("/accounts/register/")
    page.get_by_label("Email").fill("intruder@example.com")
    page.get_by_label("Name or company").fill("Intruder")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(logout_button(page)).to_be_visible()

    # When the second client opens the first one's service page, it is "not found".
    response = page.goto(f"/account/services/{service.pk}/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()
    expect(page.get_by_text("owner.example.com")).to_have_count(0)

    # And paying for it or deleting it with a valid form token are "not found" too.
    csrf = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    for path, fields in (("pay/", {}), ("action/", {"action": "close"})):
        answer = page.request.post(f"/account/services/{service.pk}/{path}", form={"csrfmiddlewaretoken": csrf, **fields})
        assert answer.status == 404, path

    # Then nothing changed: the service is still ordered and unpaid, no money moved, no panel work queued.
    service.refresh_from_db()
    assert (service.status, service.paid_at, service.client) == (ServiceStatus.ORDERED, None, owner)
    assert list(LedgerEntry.objects.values_list("client__email", "amount")) == [("owner@example.com", Decimal("1000.00"))]
    assert not Operation.objects.exists()
    assert Service.objects.count() == 1
