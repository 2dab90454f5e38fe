"""A new client's first day: confirmations, what it bought, and an intent kept across sign-up and top-up."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.choices import BillingPeriod, LedgerEntryKind, PanelAction, ProductType, ResourceKind, ServiceStatus, SuspendReason
from billing.models import LedgerEntry, Payment, Service
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.billing.test_client_pages import PASSWORD, Page, messages_of
from tests.factories import (
    ClientFactory,
    IPAssignmentFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffPriceFactory,
    TariffResourceFactory,
    UserFactory,
)

PANEL_PASSWORD = "Pa9-panel-secret-Zq"


def url(name, service, **query):
    address = reverse(name, args=[service.pk])
    return address + ("?" + "&".join(f"{key}={value}" for key, value in query.items()) if query else "")


def state():
    """Everything a client's request could change."""
    return (
        list(Service.objects.order_by("pk").values_list("pk", "status", "paid_at")),
        list(Operation.objects.values_list("service_id", "action", "status")),
        list(LedgerEntry.objects.values_list("client_id", "amount")),
        Payment.objects.count(),
    )


@pytest.fixture
def hosting(db):
    """Site hosting on https://panel.example.net:1500/ispmgr: 300.00 a month, 10 databases included (up to 50)."""
    module = ProcessingModuleFactory(url="https://panel.example.net:1500/ispmgr", edition="business")
    tariff = TariffPlanFactory(name="Start", processing_module=module, monthly_price=Decimal("300.00"), allow_dedicated_ip=True)
    TariffPriceFactory(tariff=tariff, period=BillingPeriod.QUARTER, price=Decimal("850.00"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    return tariff


@pytest.fixture
def storage(db):
    """FTP storage on the panel at https://files.example.net:1500/ispmgr: 150.00 a month."""
    module = ProcessingModuleFactory(url="https://files.example.net:1500/ispmgr", product_type=ProductType.STORAGE)
    tariff = TariffPlanFactory(
        name="FTP 10 GB", product_type=ProductType.STORAGE, processing_module=module, monthly_price=Decimal("150.00")
    )
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.FTP_USERS, included=3, unit_price=Decimal("10.00"), max_quantity=20)
    return tariff


@pytest.fixture
def active(customer, hosting):
    return ServiceFactory(
        client=customer,
        tariff=hosting,
        domain="bakery.example.com",
        price=Decimal("300.00"),
        status=ServiceStatus.ACTIVE,
        panel_username="user77",
        panel_password=PANEL_PASSWORD,
        paid_at="2025-01-01T00:00Z",
    )


@pytest.fixture
def ordered(customer, hosting):
    return ServiceFactory(client=customer, tariff=hosting, domain="new.example.com", price=Decimal("300.00"), setup_fee=Decimal("50.00"))


def top_up(client, amount):
    ledger_entry_add(client=client, kind=LedgerEntryKind.TOPUP, amount=Decimal(amount), reference="bank transfer")


# Delete and Suspend ask first, on the server


def test_delete_shows_what_happens_and_changes_nothing_until_confirmed(logged_in, active):
    before = state()

    response = logged_in.get(url("service_action", active, action="close"))

    assert response.status_code == 200
    page = Page(response)
    assert page.text("what-happens") == (
        "What happens "
        "The account user77 is deleted from the control panel with all its sites, files, databases and mail. "
        "This cannot be undone: keep a copy of anything you need before you delete. "
        "The unused part of the paid period is not refunded."
    )
    assert page.inputs["action"]["value"] == "close"
    assert "Yes, delete the account and its files" in response.content.decode()
    assert state() == before


def test_the_confirmation_promises_no_refund_whatever_the_settings_as_closing_refunds_nothing(logged_in, active, settings):
    # No code refunds the unused period on close (the billing cycle will): the page must not promise it.
    settings.BILLING_REFUND_ON_CLOSE = "unused_days"

    text = Page(logged_in.get(url("service_action", active, action="close"))).text("what-happens")

    assert "The unused part of the paid period is not refunded." in text
    assert "returned to your balance" not in text


def test_the_confirmation_names_the_dedicated_addresses_that_are_given_back(logged_in, active):
    IPAssignmentFactory(service=active, address="133.31.223.9")
    IPAssignmentFactory(service=active, address="133.31.223.10")
    IPAssignmentFactory(service=active, address="133.31.223.11", released_at="2025-01-01T00:00Z")

    page = Page(logged_in.get(url("service_action", active, action="close")))

    assert "Its dedicated IP addresses are given back: 133.31.223.9, 133.31.223.10." in page.text("what-happens")


def test_deleting_ftp_storage_speaks_of_the_files_stored_in_it(logged_in, customer, storage):
    service = ServiceFactory(client=customer, tariff=storage, domain="", status=ServiceStatus.ACTIVE, panel_username="ftp5")

    page = Page(logged_in.get(url("service_action", service, action="close")))

    assert "The account ftp5 is deleted from the control panel with all the files stored in it." in page.text("what-happens")
    assert "databases" not in page.text("what-happens")


def test_suspend_shows_what_happens_and_changes_nothing_until_confirmed(logged_in, active):
    before = state()

    page = Page(logged_in.get(url("service_action", active, action="suspend")))

    assert page.text("what-happens") == (
        "What happens "
        "The sites, mail and FTP of the account stop working until you resume it here. "
        "Your files, databases and mail are kept. "
        "The paid period keeps running while the service is suspended."
    )
    assert state() == before


@pytest.mark.parametrize("action", ["suspend", "close"])
@pytest.mark.parametrize("confirm", [None, "", "no", "YES", "1"])
def test_a_post_without_an_explicit_yes_shows_the_confirmation_and_changes_nothing(logged_in, active, action, confirm):
    before = state()
    data = {"action": action} | ({"confirm": confirm} if confirm is not None else {})

    response = logged_in.post(url("service_action", active), data)

    assert response.status_code == 200
    assert "what-happens" in Page(response).ids
    assert state() == before


def test_a_confirmed_delete_queues_the_close_and_the_page_shows_it_pending(logged_in, user, active):
    response = logged_in.post(url("service_action", active), {"action": "close", "confirm": "yes"}, follow=True)

    assert response.redirect_chain == [(url("service_detail", active), 302)]
    operation = Operation.objects.get()
    assert (operation.service, operation.action, operation.status, operation.requested_by) == (
        active,
        PanelAction.CLOSE,
        OperationStatus.QUEUED,
        user,
    )
    assert messages_of(response) == [f"Deletion of service #{active.pk} requested: the control panel does it within a few seconds."]
    page = Page(response)
    assert page.text("service-status") == "Active"  # the panel has not done it yet: no contradiction
    assert page.text("pending-action") == "Deletion requested: waiting for the control panel. Reload the page in a few seconds."
    body = response.content.decode()
    assert "?action=suspend" not in body and "?action=close" not in body


def test_a_confirmed_suspend_leaves_no_suspend_button_while_it_is_on_its_way(logged_in, active):
    response = logged_in.post(url("service_action", active), {"action": "suspend", "confirm": "yes"}, follow=True)

    assert messages_of(response) == [f"Suspension of service #{active.pk} requested: the control panel does it within a few seconds."]
    assert Page(response).text("pending-action") == "Suspension requested: waiting for the control panel. Reload the page in a few seconds."
    assert "?action=suspend" not in response.content.decode()
    assert Operation.objects.get().payload == {"suspend_reason": SuspendReason.CLIENT}


def test_confirming_again_from_a_stale_tab_says_it_is_on_its_way_and_queues_nothing_more(logged_in, active):
    logged_in.post(url("service_action", active), {"action": "suspend", "confirm": "yes"}, follow=True)

    response = logged_in.post(url("service_action", active), {"action": "suspend", "confirm": "yes"}, follow=True)

    assert messages_of(response) == [f"“Suspend” is already on its way to the panel for service #{active.pk}."]
    assert Operation.objects.count() == 1


def test_the_confirmation_page_of_an_action_not_offered_now_goes_back_with_a_message(logged_in, active):
    logged_in.post(url("service_action", active), {"action": "suspend", "confirm": "yes"}, follow=True)

    response = logged_in.get(url("service_action", active, action="close"), follow=True)

    assert response.redirect_chain == [(url("service_detail", active), 302)]
    assert messages_of(response) == ["This action is not available now."]
    assert list(Operation.objects.values_list("action", flat=True)) == [PanelAction.SUSPEND]


@pytest.mark.parametrize("action", ["resume", "open", "change_password", "", "<script>"])
def test_only_suspend_and_delete_have_a_confirmation_page(logged_in, active, action):
    before = state()

    response = logged_in.get(url("service_action", active, action=action), follow=True)

    assert response.redirect_chain == [(url("service_detail", active), 302)]
    assert messages_of(response) == ["This action is not available now."]
    assert state() == before


def test_cancelling_an_unpaid_order_is_confirmed_too_and_says_nothing_was_charged(logged_in, ordered):
    page = Page(logged_in.get(url("service_action", ordered, action="close")))
    assert page.text("what-happens") == "What happens The order is cancelled. It was not paid for: nothing is charged or refunded."

    response = logged_in.post(url("service_action", ordered), {"action": "close", "confirm": "yes"}, follow=True)

    assert messages_of(response) == [f"Order #{ordered.pk} cancelled: nothing was charged."]
    assert Page(response).text("service-status") == "Deleted"
    assert not Operation.objects.exists()


def test_the_confirmation_page_follows_the_address_language(logged_in, active):
    response = logged_in.get("/ru" + url("service_action", active, action="close"))

    assert response.status_code == 200
    assert '<html lang="ru">' in response.content.decode()


# What the client bought


def test_the_service_page_lists_the_dedicated_addresses_it_holds(logged_in, active):
    IPAssignmentFactory(service=active, address="133.31.223.9")
    IPAssignmentFactory(service=active, address="133.31.223.11", released_at="2025-01-01T00:00Z")

    page = Page(logged_in.get(url("service_detail", active)))

    assert page.text("service-addresses") == "133.31.223.9"


def test_a_service_without_dedicated_addresses_shows_no_such_line(logged_in, active):
    page = Page(logged_in.get(url("service_detail", active)))

    assert "service-addresses" not in page.ids


def test_ftp_storage_shows_how_to_connect_and_no_domain(logged_in, customer, storage):
    service = ServiceFactory(client=customer, tariff=storage, domain="", status=ServiceStatus.ACTIVE, panel_username="user12")

    response = logged_in.get(url("service_detail", service))

    page = Page(response)
    assert (page.text("ftp-host"), page.text("ftp-port"), page.text("ftp-login"), page.text("ftp-protocol")) == (
        "files.example.net",
        "21",
        "user12",
        "FTP or FTPS (explicit TLS)",
    )
    assert "service-domain" not in page.ids
    assert ">Domain<" not in response.content.decode()


def test_site_hosting_shows_its_domain_and_no_ftp_block(logged_in, active):
    page = Page(logged_in.get(url("service_detail", active)))

    assert page.text("service-domain") == "bakery.example.com"
    assert "ftp-access" not in page.ids


def test_ftp_storage_not_yet_opened_shows_no_connection_details(logged_in, customer, storage):
    service = ServiceFactory(client=customer, tariff=storage, domain="", price=Decimal("150.00"))

    assert "ftp-access" not in Page(logged_in.get(url("service_detail", service))).ids


def test_the_ftp_storage_order_form_has_no_domain_field_and_orders_without_one(logged_in, customer, storage):
    form_page = logged_in.get(reverse("order", args=[storage.pk]))
    assert "domain" not in Page(form_page).inputs
    assert "site's domain" not in form_page.content.decode()

    response = logged_in.post(reverse("order", args=[storage.pk]), {"period": "1", "ftp_users": "3", "domain": "ignored.example.com"})

    service = Service.objects.get()
    assert response["Location"] == url("service_detail", service)
    assert (service.tariff, service.domain) == (storage, "")


def test_a_deleted_service_offers_no_panel_link_and_no_password(logged_in, active):
    Service.objects.filter(pk=active.pk).update(status=ServiceStatus.DELETED)
    IPAssignmentFactory(service=active, address="133.31.223.12", released_at="2025-01-01T00:00Z")

    response = logged_in.get(url("service_detail", active))

    page = Page(response)
    body = response.content.decode()
    assert page.text("service-status") == "Deleted"
    assert page.text("panel-username") == "user77"
    assert "panel-link" not in page.ids and "panel.example.net" not in body
    assert "Show password" not in body and "password" not in page.inputs
    assert "service-addresses" not in page.ids


def test_a_deleted_service_never_reveals_its_old_password(logged_in, active):
    Service.objects.filter(pk=active.pk).update(status=ServiceStatus.DELETED)

    response = logged_in.post(url("service_detail", active), {"password": PASSWORD})

    assert PANEL_PASSWORD not in response.content.decode()
    assert PANEL_PASSWORD not in logged_in.get(url("service_detail", active, show=1)).content.decode()


# "Sign up to order" keeps what was typed


ORDER = {"period": "3", "domain": "shop.example.com", "databases": "12"}


def test_sign_up_from_the_order_form_comes_back_to_it_with_what_was_typed(client, hosting):
    order_url = reverse("order", args=[hosting.pk])

    sent = client.post(order_url, {**ORDER, "then": "register"})
    assert sent["Location"] == f"{reverse('register')}?next={order_url}"
    assert not Service.objects.exists()
    registered = client.post(sent["Location"], {"email": "new@example.com", "name": "New Co", "password": "a-long-unusual-passphrase"})
    assert registered["Location"] == order_url

    page = Page(client.get(order_url))

    assert (page.inputs["domain"]["value"], page.inputs["databases"]["value"]) == ("shop.example.com", "12")
    assert not Service.objects.exists()


def test_the_kept_period_is_selected_when_the_form_comes_back(client, hosting):
    order_url = reverse("order", args=[hosting.pk])
    client.post(order_url, {**ORDER, "then": "register"})
    client.post(f"{reverse('register')}?next={order_url}", {"email": "n@example.com", "name": "N", "password": "a-long-unusual-passphrase"})

    form = client.get(order_url).context["form"]

    assert form["period"].value() == "3"
    assert form["domain"].value() == "shop.example.com"


def test_the_typed_values_come_back_once_only(client, hosting):
    order_url = reverse("order", args=[hosting.pk])
    client.post(order_url, {**ORDER, "then": "register"})
    client.post(f"{reverse('register')}?next={order_url}", {"email": "n@example.com", "name": "N", "password": "a-long-unusual-passphrase"})
    client.get(order_url)

    again = Page(client.get(order_url))

    assert again.inputs["domain"].get("value") is None
    assert again.inputs["databases"]["value"] == "10"


def test_log_in_from_the_order_form_comes_back_to_it_with_what_was_typed(client, hosting):
    user = UserFactory(username="ann@example.com")
    ClientFactory(email=user.email).users.add(user)
    order_url = reverse("order", args=[hosting.pk])

    sent = client.post(order_url, {**ORDER, "then": "login"})
    assert sent["Location"] == f"{reverse('login')}?next={order_url}"
    logged = client.post(sent["Location"], {"username": "ann@example.com", "password": PASSWORD})
    assert logged["Location"] == order_url

    page = Page(client.get(order_url))
    assert (page.inputs["domain"]["value"], page.inputs["databases"]["value"]) == ("shop.example.com", "12")


def test_what_was_typed_for_one_tariff_does_not_fill_another(client, hosting, storage):
    client.post(reverse("order", args=[hosting.pk]), {**ORDER, "then": "register"})
    client.post(reverse("register"), {"email": "n@example.com", "name": "N", "password": "a-long-unusual-passphrase"})

    other = client.get(reverse("order", args=[storage.pk])).context["form"]
    mine = Page(client.get(reverse("order", args=[hosting.pk])))

    assert other.initial == {}
    assert mine.inputs["domain"]["value"] == "shop.example.com"


def test_hostile_typed_values_come_back_escaped_and_cut_and_create_nothing(client, hosting):
    order_url = reverse("order", args=[hosting.pk])
    hostile = '"><script>alert(1)</script>' + "x" * 10_000

    client.post(order_url, {"period": "1", "domain": hostile, "databases": "1e9999", "then": "register", "extra": "y" * 100})
    client.post(f"{reverse('register')}?next={order_url}", {"email": "n@example.com", "name": "N", "password": "a-long-unusual-passphrase"})
    response = client.get(order_url)

    assert response.status_code == 200
    body = response.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert len(Page(response).inputs["domain"]["value"]) == 300
    assert "extra" not in client.session.get("order_draft", {}).get("fields", {})
    assert not Service.objects.exists()


# "Not enough money" comes back to the unpaid order with "Pay now"


def test_not_enough_money_then_a_top_up_offers_pay_now_and_pays_the_order(logged_in, customer, ordered, settings):
    settings.PAYMENT_GATEWAYS = ["manual", "test"]
    top_up(customer, "100.00")

    refused = logged_in.post(url("service_pay", ordered))
    assert refused["Location"] == f"{reverse('balance')}?amount=250.00&service={ordered.pk}"
    topped = logged_in.post(refused["Location"], {"amount": "250.00", "gateway": "test"})
    payment = Payment.objects.get()
    assert topped["Location"] == f"{reverse('payment_detail', args=[payment.pk])}?service={ordered.pk}"

    offer = Page(logged_in.get(topped["Location"]))
    assert f"pay-now-{ordered.pk}" in offer.ids
    assert f"Order #{ordered.pk}" in offer.text(f"pay-now-{ordered.pk}")

    paid = logged_in.post(url("service_pay", ordered), follow=True)
    assert messages_of(paid) == ["Paid. Your account is being created: this takes a few seconds."]
    ordered.refresh_from_db()
    assert ordered.status == ServiceStatus.PROCESSING
    assert client_balance(client=customer) == Decimal("0.00")


def test_a_bank_transfer_for_an_order_says_how_to_pay_it_once_the_money_arrives(logged_in, customer, ordered):
    response = logged_in.post(f"{reverse('balance')}?amount=350.00&service={ordered.pk}", {"amount": "350.00", "gateway": "manual"})

    page = Page(logged_in.get(response["Location"]))

    assert "Once the money is on your balance, pay for Start on its page or on the Balance page." in page.text("unpaid-orders")
    assert f"pay-now-{ordered.pk}" not in page.ids


def test_the_balance_page_offers_pay_now_for_every_unpaid_order(logged_in, customer, hosting, ordered):
    other = ServiceFactory(client=customer, tariff=hosting, price=Decimal("300.00"))
    ServiceFactory(client=customer, tariff=hosting, status=ServiceStatus.DELETED)

    page = Page(logged_in.get(reverse("balance")))

    assert {element for element in page.ids if element.startswith("pay-now-")} == {f"pay-now-{ordered.pk}", f"pay-now-{other.pk}"}


def test_an_order_id_of_another_client_in_the_address_is_ignored(logged_in, customer, hosting, settings):
    settings.PAYMENT_GATEWAYS = ["manual", "test"]
    stranger = ServiceFactory(client=ClientFactory(name="Bob"), tariff=hosting, domain="bob.example.com", price=Decimal("300.00"))

    response = logged_in.post(f"{reverse('balance')}?service={stranger.pk}", {"amount": "10.00", "gateway": "test"})

    assert response["Location"] == reverse("payment_detail", args=[Payment.objects.get().pk])
    for address in (f"{response['Location']}?service={stranger.pk}", f"{reverse('balance')}?service={stranger.pk}"):
        body = logged_in.get(address).content.decode()
        assert "bob.example.com" not in body and f"pay-now-{stranger.pk}" not in body


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "9" * 40, "", "1 OR 1=1"])
def test_a_malformed_order_id_in_the_address_is_ignored(logged_in, ordered, value):
    assert logged_in.get(f"{reverse('balance')}?service={value}").status_code == 200
    assert logged_in.get(f"{reverse('balance')}?amount=1&service={value}").status_code == 200


def test_paying_twice_says_it_is_already_paid_and_charged_nothing_more(logged_in, customer, ordered):
    top_up(customer, "1000.00")
    logged_in.post(url("service_pay", ordered), follow=True)

    again = logged_in.post(url("service_pay", ordered), follow=True)

    assert messages_of(again) == [f"Service #{ordered.pk} is already paid for: nothing was charged."]
    assert client_balance(client=customer) == Decimal("650.00")

