"""The shop-window and the client area, driven over HTTP as a visitor and a client use them."""

import json
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.choices import BillingPeriod, LedgerEntryKind, PanelAction, PaymentStatus, ProductType, ResourceKind, ServiceStatus
from billing.models import Client, LedgerEntry, Payment, Service, ServiceResource, TariffPrice, TariffResource
from billing.payments import GATEWAYS, DemoGateway, PaymentStart, callback_signature
from billing.pricing import tariff_quote
from billing.selectors import client_balance
from billing.services import ledger_entry_add
from provisioning.choices import OperationStatus
from provisioning.models import Operation
from tests.factories import (
    ClientFactory,
    ProcessingModuleFactory,
    ServiceFactory,
    TariffPlanFactory,
    TariffPriceFactory,
    TariffResourceFactory,
    UserFactory,
)

PASSWORD = "correct-horse-battery"  # what tests.factories.UserFactory sets
PANEL_PASSWORD = "Pa9-panel-secret-Zq"
User = get_user_model()


# What a reader sees of a page


class Page(HTMLParser):
    """The text of each element with an id, the attributes of each input by name, and table rows."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})

    def __init__(self, response):
        super().__init__(convert_charrefs=True)
        self.ids, self.inputs, self.rows, self._open = {}, {}, [], []
        self.feed(response.content.decode())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name"):
            self.inputs.setdefault(attrs["name"], attrs)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
        if attrs.get("id"):
            self.ids[attrs["id"]] = ""
        if tag not in self.VOID:
            self._open.append((tag, attrs.get("id")))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        for _tag, element_id in self._open:
            if element_id:
                self.ids[element_id] += data
        if any(tag in ("td", "th") for tag, _ in self._open) and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data

    def text(self, element_id):
        return " ".join(self.ids[element_id].split())

    def table(self):
        return [[" ".join(cell.split()) for cell in row] for row in self.rows]


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def order_url(tariff):
    return reverse("order", args=[tariff.pk])


def service_url(service, name="service_detail"):
    return reverse(name, args=[service.pk])


def snapshot():
    """Everything a client's request could create."""
    return (User.objects.count(), Client.objects.count(), Service.objects.count(), Payment.objects.count(), LedgerEntry.objects.count())


# Fixtures


@pytest.fixture
def tariff(db):
    """Monthly 300.00 and quarterly 850.00, a 50.00 setup fee; 10 databases included, up to 50 at 20.00 each."""
    tariff = TariffPlanFactory(name="Start", setup_fee=Decimal("50.00"), monthly_price=Decimal("300.00"))
    TariffPriceFactory(tariff=tariff, period=BillingPeriod.QUARTER, price=Decimal("850.00"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DATABASES, included=10, unit_price=Decimal("20.00"), max_quantity=50)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DISK, included=1000, unit_price=Decimal("0.50"), max_quantity=None)
    return tariff


def top_up(customer, amount):
    return ledger_entry_add(client=customer, kind=LedgerEntryKind.TOPUP, amount=Decimal(amount), reference="bank transfer")


def ordered_service(customer, tariff, **fields):
    fields = {"price": Decimal("300.00"), "setup_fee": Decimal("50.00"), "domain": "bakery.example.com", **fields}
    return ServiceFactory(client=customer, tariff=tariff, **fields)


# The shop-window


def test_shop_window_lists_only_visible_enabled_tariffs_grouped_by_product_type(client, tariff):
    storage = TariffPlanFactory(name="FTP 100", product_type=ProductType.STORAGE)
    TariffPlanFactory(name="Hidden plan", is_visible=False)
    TariffPlanFactory(name="Retired plan", is_enabled=False)
    second_vhost = TariffPlanFactory(name="Pro", ordering=5)

    response = client.get(reverse("shop"))

    assert response.status_code == 200
    sections = [(str(label), [t.name for t in tariffs]) for label, tariffs in response.context["sections"]]
    assert sections == [("Shared hosting", ["Start", "Pro"]), ("External FTP-storage", ["FTP 100"])]
    page = response.content.decode()
    for hidden in ("Hidden plan", "Retired plan"):
        assert hidden not in page
    for shown in (tariff, storage, second_vhost):
        assert f'href="{order_url(shown)}"' in page
    assert page.index("Shared hosting") < page.index("Pro") < page.index("External FTP-storage") < page.index("FTP 100")


def test_shop_window_shows_each_price_per_period_the_setup_fee_and_the_included_resources(client, tariff):
    response = client.get(reverse("shop"))

    text = " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())
    assert "300.00 RUB monthly" in text
    assert "850.00 RUB quarterly" in text
    assert "Setup fee 50.00 RUB" in text
    assert "Databases: 10" in text
    assert "Disk, MiB: 1,000" in text


@pytest.mark.parametrize(("prefix", "shown", "not_shown"), [("", "Start", "Старт"), ("/ru", "Старт", "Start")])
def test_shop_window_shows_the_tariff_name_in_the_language_of_the_address(client, tariff, prefix, shown, not_shown):
    tariff.name_ru = "Старт"
    tariff.save()

    response = client.get(f"{prefix}/")

    (section,) = response.context["sections"]
    assert [t.name for t in section[1]] == [shown]
    assert f"<h3>{shown}</h3>" in response.content.decode()
    assert f"<h3>{not_shown}</h3>" not in response.content.decode()


def test_shop_window_falls_back_to_the_english_name_when_there_is_no_russian_one(client, tariff):
    response = client.get("/ru/")

    assert "<h3>Start</h3>" in response.content.decode()
    assert [str(label) for label, _ in response.context["sections"]] == ["Виртуальный хостинг"]


# The order page


def test_order_page_starts_each_resource_at_its_included_amount_with_the_initial_totals_of_billing_pricing(client, tariff):
    response = client.get(order_url(tariff))

    assert response.status_code == 200
    page = Page(response)
    databases, disk = page.inputs["databases"], page.inputs["disk"]
    assert (databases["type"], databases["value"], databases["max"]) == ("number", "10", "50")
    assert (disk["type"], disk["value"]) == ("number", "1000")
    assert "10 included; each extra 20.00 RUB a month" in page.text("id_databases_helptext")
    quote = tariff_quote(tariff=tariff, tariff_price=Decimal("300.00"), period=BillingPeriod.MONTH, quantities={})
    assert (page.text("price-per-period"), page.text("price-due")) == (str(quote.price), str(quote.total)) == ("300.00", "350.00")
    assert "including the setup fee" in response.content.decode()
    assert [option for option, _ in response.context["form"].fields["period"].choices] == [1, 3]


def test_order_page_resource_inputs_have_the_included_amount_as_their_minimum(client, tariff):
    page = Page(client.get(order_url(tariff)))

    assert (page.inputs["databases"]["min"], page.inputs["disk"]["min"]) == ("10", "1000")


def test_order_page_resource_without_a_tariff_maximum_is_bounded_by_the_most_any_service_may_have(client, tariff):
    page = Page(client.get(order_url(tariff)))

    assert page.inputs["disk"]["max"] == "10000000"


@pytest.mark.parametrize(
    ("allow_dedicated_ip", "edition", "offered"),
    [(True, "business", True), (True, "", True), (True, "lite", False), (False, "business", False)],
)
def test_order_page_offers_dedicated_ips_only_where_the_tariff_allows_them_and_the_panel_is_not_lite(
    client, db, allow_dedicated_ip, edition, offered
):
    module = ProcessingModuleFactory(edition=edition)
    tariff = TariffPlanFactory(processing_module=module, allow_dedicated_ip=allow_dedicated_ip)
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DEDICATED_IPV4, included=0, unit_price=Decimal("150.00"), max_quantity=4)

    page = Page(client.get(order_url(tariff)))

    assert ("dedicated_ipv4" in page.inputs) is offered


def test_anonymous_order_post_redirects_to_login_and_creates_nothing(client, tariff):
    before = snapshot()

    response = client.post(order_url(tariff), {"period": "1", "domain": "example.com", "databases": "10", "disk": "1000"})

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={order_url(tariff)}"
    assert snapshot() == before


def test_order_is_priced_on_the_server_from_the_period_and_the_extra_resources(logged_in, user, customer, tariff):
    response = logged_in.post(order_url(tariff), {"period": "3", "domain": "Bakery.Example.COM.", "databases": "12", "disk": "1000"})

    service = Service.objects.get()
    assert response.status_code == 302
    assert response["Location"] == service_url(service)
    # 850.00 for the quarter + 2 extra databases * 20.00 * 3 months; the setup fee once.
    assert (service.client, service.tariff, service.ordered_by, service.status) == (customer, tariff, user, ServiceStatus.ORDERED)
    assert (service.period, service.domain, service.price, service.setup_fee) == (
        3,
        "bakery.example.com",
        Decimal("970.00"),
        Decimal("50.00"),
    )
    assert dict(service.resources.values_list("kind", "quantity")) == {"databases": 12, "disk": 1000}
    assert client_balance(client=customer) == 0
    assert messages_of(logged_in.get(response["Location"])) == [f"Order #{service.pk} placed."]


def test_order_with_dedicated_ips_is_priced_with_them(logged_in, customer):
    tariff = TariffPlanFactory(allow_dedicated_ip=True, processing_module=ProcessingModuleFactory(edition="business"))
    TariffResourceFactory(tariff=tariff, kind=ResourceKind.DEDICATED_IPV4, included=0, unit_price=Decimal("150.00"), max_quantity=4)

    response = logged_in.post(order_url(tariff), {"period": "1", "domain": "ip.example.com", "dedicated_ipv4": "2"})

    service = Service.objects.get()
    assert response["Location"] == service_url(service)
    assert (service.price, service.setup_fee) == (Decimal("600.00"), Decimal("0.00"))
    assert dict(service.resources.values_list("kind", "quantity")) == {"dedicated_ipv4": 2}


# Registration, login, logout, password reset


@pytest.mark.parametrize(("prefix", "language"), [("", "en"), ("/ru", "ru")])
def test_registration_creates_the_user_and_its_client_and_logs_in(client, db, prefix, language):
    response = client.post(
        f"{prefix}/accounts/register/", {"email": "New.Owner@Example.COM", "name": "New Co", "password": "a-long-unusual-passphrase"}
    )

    user = User.objects.get()
    assert (user.username, user.email) == ("new.owner@example.com", "new.owner@example.com")
    assert user.check_password("a-long-unusual-passphrase")
    account = user.clients.get()
    assert (account.name, account.email, account.language) == ("New Co", "new.owner@example.com", language)
    assert response.status_code == 302
    dashboard = client.get(response["Location"])
    assert dashboard.status_code == 200
    assert dashboard.context["user"] == user
    assert dashboard.context["client"] == account


def test_registration_from_the_order_page_returns_to_it(client, tariff):
    response = client.post(
        f"{reverse('register')}?next={order_url(tariff)}",
        {"email": "new@example.com", "name": "New Co", "password": "a-long-unusual-passphrase"},
    )

    assert response.status_code == 302
    assert response["Location"] == order_url(tariff)
    assert client.get(order_url(tariff)).context["user"].username == "new@example.com"


def test_registration_with_an_email_already_in_use_shows_the_message_and_creates_nothing(client, customer):
    before = snapshot()

    response = client.post(reverse("register"), {"email": "ANN@example.com", "name": "Someone", "password": "a-long-unusual-passphrase"})

    assert response.status_code == 200
    assert response.context["form"].errors == {"email": ["An account with this email already exists: log in, or reset the password."]}
    assert "An account with this email already exists" in response.content.decode()
    assert snapshot() == before
    assert not response.context["user"].is_authenticated


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Xy7!", "This password is too short. It must contain at least 8 characters."),
        ("password123", "This password is too common."),
        ("8375920184", "This password is entirely numeric."),
    ],
)
def test_registration_refuses_a_weak_password(client, db, password, message):
    data = {"email": "new.owner@example.com", "name": "New Co", "password": password}

    response = client.post(reverse("register"), data)

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["password"])
    assert message in response.content.decode()
    assert snapshot() == (0, 0, 0, 0, 0)


def test_registration_refuses_the_email_as_the_password(client, db):
    data = {"email": "new.owner@example.com", "name": "New Co", "password": "new.owner@example.com"}

    response = client.post(reverse("register"), data)

    assert response.status_code == 200
    assert "The password is too similar to the" in " ".join(response.context["form"].errors["password"])
    assert snapshot() == (0, 0, 0, 0, 0)


def test_login_with_the_email_opens_the_client_area(client, user, customer):
    response = client.post(reverse("login"), {"username": "ann@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("client_area")
    assert client.get(reverse("client_area")).context["client"] == customer


@pytest.mark.parametrize("typed", ["Ann@Example.com", " ANN@EXAMPLE.COM "])
def test_login_with_the_email_in_another_case_opens_the_client_area(client, user, customer, typed):
    """Sign-up stores the email lower-cased; the client types it as it likes."""
    response = client.post(reverse("login"), {"username": typed, "password": PASSWORD})

    assert response.status_code == 302
    assert client.get(reverse("client_area")).context["client"] == customer


def test_a_staff_login_without_an_email_keeps_its_case(client, db):
    UserFactory(username="Olga", is_staff=True)

    assert client.post(reverse("login"), {"username": "olga", "password": PASSWORD}).status_code == 200
    assert client.post(reverse("login"), {"username": "Olga", "password": PASSWORD}).status_code == 302


def test_login_with_a_wrong_password_says_so(client, user):
    response = client.post(reverse("login"), {"username": "ann@example.com", "password": "not-it"})

    assert response.status_code == 200
    assert "Wrong email or password." in response.content.decode()
    assert not response.context["user"].is_authenticated


def test_logout_is_a_post_and_ends_the_session(logged_in):
    assert logged_in.get(reverse("logout")).status_code == 405
    assert logged_in.get(reverse("client_area")).status_code == 200

    response = logged_in.post(reverse("logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("shop")
    after = logged_in.get(reverse("client_area"))
    assert after.status_code == 302
    assert after["Location"].startswith(reverse("login"))


def test_password_reset_mails_a_link_that_sets_a_new_password_once(client, user):
    response = client.post(reverse("password_reset"), {"email": "ann@example.com"})

    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    (message,) = mail.outbox
    assert message.to == ["ann@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/[\w-]+/[\w-]+/)", message.body).group(1)

    form = client.get(link, follow=True)

    assert form.context["validlink"] is True
    set_password_url = form.redirect_chain[-1][0]
    done = client.post(set_password_url, {"new_password1": "a-brand-new-passphrase", "new_password2": "a-brand-new-passphrase"})
    assert done.status_code == 302
    assert done["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password("a-brand-new-passphrase")
    assert client.get(link, follow=True).context["validlink"] is False


def test_password_reset_for_an_unknown_email_sends_nothing_and_does_not_say_so(client, user):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})

    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


# The client area


def test_client_area_shows_the_balance_with_its_recent_entries_and_the_services(logged_in, customer, tariff):
    top_up(customer, "1000.00")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.CHARGE, amount=Decimal("350.00"), reference="Service #1, first payment")
    active = ordered_service(customer, tariff, status=ServiceStatus.ACTIVE, panel_username="user41", domain="shop.example.com")
    waiting = ordered_service(customer, tariff, domain="")
    ordered_service(customer, tariff, status=ServiceStatus.DELETED, domain="gone.example.com")
    ServiceFactory(domain="someone-else.example.com")

    response = logged_in.get(reverse("client_area"))

    assert response.status_code == 200
    assert response.context["balance"] == Decimal("650.00")
    assert [(e.kind, e.amount) for e in response.context["entries"]] == [
        (LedgerEntryKind.CHARGE, Decimal("-350.00")),
        (LedgerEntryKind.TOPUP, Decimal("1000.00")),
    ]
    text = " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())
    assert "Charge · -350.00 RUB" in text
    assert "Top-up · 1,000.00 RUB" in text
    assert Page(response).table() == [
        ["#", "Plan", "Domain", "Status", "Paid until", "Next charge", "Panel login"],
        [str(waiting.pk), "Start", "—", "Ordered", "—", "—", "—"],
        [str(active.pk), "Start", "shop.example.com", "Active", "—", "—", "user41"],
    ]


def test_balance_page_shows_the_balance_and_its_whole_history(logged_in, customer):
    top_up(customer, "1000.00")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.CHARGE, amount=Decimal("350.00"), reference="Service #7, first payment")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.ADJUSTMENT, amount=Decimal("-0.50"), reference="rounding")

    response = logged_in.get(reverse("balance"))

    assert response.status_code == 200
    assert response.context["balance"] == Decimal("649.50")
    year = timezone.now().year  # each movement names its document, numbered in this year's series; an adjustment has none
    assert [row[1:] for row in Page(response).table()] == [
        ["What", "Details", "Amount"],
        ["Adjustment", "rounding", "-0.50 RUB"],
        ["Charge", f"Service #7, first payment · INV-{year}-00001", "-350.00 RUB"],
        ["Top-up", f"bank transfer · RCP-{year}-00001", "1,000.00 RUB"],
    ]
    assert f'href="{reverse("document_detail", args=[customer.documents.get(number=f"INV-{year}-00001").pk])}"' in response.content.decode()


def test_balance_is_shown_with_two_decimals(logged_in, customer):
    top_up(customer, "1000.00")
    ledger_entry_add(client=customer, kind=LedgerEntryKind.CHARGE, amount=Decimal("350.50"), reference="Service #1, first payment")

    dashboard = logged_in.get(reverse("client_area")).content.decode()
    balance = logged_in.get(reverse("balance")).content.decode()

    assert '<p class="amount">649.50\xa0RUB</p>' in dashboard
    assert "<h1>Balance: 649.50\xa0RUB</h1>" in balance


def test_client_area_asks_an_anonymous_visitor_to_log_in(client, db):
    response = client.get(reverse("client_area"))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={reverse('client_area')}"


# Top-ups


def test_top_up_by_bank_transfer_shows_the_instructions_with_the_reference_and_credits_nothing_yet(logged_in, user, customer):
    response = logged_in.post(reverse("balance"), {"amount": "500", "gateway": "manual"}, follow=True)

    payment = Payment.objects.get()
    assert response.redirect_chain == [(reverse("payment_detail", args=[payment.pk]), 302)]
    assert (payment.client, payment.gateway, payment.amount, payment.currency) == (customer, "manual", Decimal("500.00"), "RUB")
    assert (payment.status, payment.created_by) == (PaymentStatus.PENDING, user)
    instructions = response.context["instructions"]
    assert f"Payment reference: {payment.reference}" in instructions
    assert settings.BANK_TRANSFER_DETAILS in instructions
    assert f"Payment reference: {payment.reference}" in response.content.decode()
    assert client_balance(client=customer) == 0


def test_top_up_with_the_test_gateway_credits_the_balance_at_once(logged_in, customer, settings):
    settings.PAYMENT_GATEWAYS = ["manual", "test"]

    response = logged_in.post(reverse("balance"), {"amount": "250.50", "gateway": "test"}, follow=True)

    payment = Payment.objects.get()
    assert (payment.status, payment.external_id) == (PaymentStatus.PAID, f"test-{payment.reference}")
    assert "Your balance has been credited." in response.content.decode()
    assert response.context["instructions"] == ""
    (entry,) = customer.ledger_entries.all()
    assert (entry.kind, entry.amount, entry.reference) == (LedgerEntryKind.TOPUP, Decimal("250.50"), f"Payment {payment.reference}")
    assert logged_in.get(reverse("client_area")).context["balance"] == Decimal("250.50")


class CardGateway(DemoGateway):
    """A card gateway as a real one works: the client pays on its page; it calls back, signed."""

    code = "card"
    name = "Card"

    def start(self, payment):
        return PaymentStart(redirect_url=f"https://pay.example.com/checkout?order={payment.reference}")


def test_a_card_gateway_sends_the_client_to_its_page_and_its_signed_callback_credits_once(logged_in, customer, settings, monkeypatch):
    settings.PAYMENT_GATEWAYS = ["manual", "card"]
    settings.PAYMENT_CALLBACK_SECRET = "card-secret"
    monkeypatch.setitem(GATEWAYS, "card", CardGateway())

    response = logged_in.post(reverse("balance"), {"amount": "300", "gateway": "card"})

    payment = Payment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"https://pay.example.com/checkout?order={payment.reference}"
    assert payment.status == PaymentStatus.PENDING

    body = json.dumps({"reference": payment.reference, "status": "paid", "id": "ch_1"}).encode()
    for _ in range(2):  # gateways deliver callbacks more than once
        callback = logged_in.post(
            reverse("gateway_callback", args=["card"]), body, content_type="application/json", HTTP_X_SIGNATURE=callback_signature(body)
        )
        assert callback.status_code == 200
    payment.refresh_from_db()
    assert (payment.status, payment.external_id) == (PaymentStatus.PAID, "ch_1")
    assert client_balance(client=customer) == Decimal("300.00")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"amount": "0", "gateway": "manual"}, "amount", "Ensure this value is greater than or equal to 1.00."),
        ({"amount": "-5", "gateway": "manual"}, "amount", "Ensure this value is greater than or equal to 1.00."),
        ({"amount": "lots", "gateway": "manual"}, "amount", "Enter a number."),
        ({"amount": "10.001", "gateway": "manual"}, "amount", "Ensure that there are no more than 2 decimal places."),
        ({"amount": "1000000.01", "gateway": "manual"}, "amount", "Enter an amount from 1.00 to 1000000.00."),
        ({"amount": "", "gateway": "manual"}, "amount", "This field is required."),
        ({"amount": "NaN", "gateway": "manual"}, "amount", "Enter a number."),
        ({"amount": "100", "gateway": "test"}, "gateway", "Select a valid choice. test is not one of the available choices."),
    ],
)
def test_invalid_top_up_shows_the_error_and_creates_nothing(logged_in, customer, data, field, message):
    before = snapshot()

    response = logged_in.post(reverse("balance"), data)

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert message in response.content.decode()
    assert snapshot() == before


# Paying for a service


def test_pay_button_charges_the_first_payment_and_queues_the_account(logged_in, user, customer, tariff):
    top_up(customer, "1000.00")
    service = ordered_service(customer, tariff)
    assert "Pay 350.00\xa0RUB from the balance" in logged_in.get(service_url(service)).content.decode()

    response = logged_in.post(service_url(service, "service_pay"), follow=True)

    assert response.redirect_chain == [(service_url(service), 302)]
    assert messages_of(response) == ["Paid. Your account is being created: this takes a few seconds."]
    assert client_balance(client=customer) == Decimal("650.00")
    service.refresh_from_db()
    assert service.status == ServiceStatus.PROCESSING
    assert service.paid_at is not None
    operation = Operation.objects.get(service=service)
    assert (operation.action, operation.status, operation.requested_by) == (PanelAction.OPEN, OperationStatus.QUEUED, user)
    assert Page(response).text("service-status") == "Processing"


def test_paying_twice_charges_once(logged_in, customer, tariff):
    top_up(customer, "1000.00")
    service = ordered_service(customer, tariff)

    logged_in.post(service_url(service, "service_pay"))
    logged_in.post(service_url(service, "service_pay"))

    assert client_balance(client=customer) == Decimal("650.00")
    assert Operation.objects.filter(service=service).count() == 1


def test_pay_with_too_little_money_goes_to_the_balance_page_with_the_missing_amount(logged_in, customer, tariff):
    top_up(customer, "100.00")
    service = ordered_service(customer, tariff)

    response = logged_in.post(service_url(service, "service_pay"), follow=True)

    assert response.redirect_chain == [(f"{reverse('balance')}?amount=250.00&service={service.pk}", 302)]
    assert messages_of(response) == ["Not enough money on the balance: 250.00\xa0RUB more is needed."]
    assert client_balance(client=customer) == Decimal("100.00")
    service.refresh_from_db()
    assert (service.status, service.paid_at) == (ServiceStatus.ORDERED, None)
    assert not Operation.objects.exists()


def test_balance_page_after_a_refused_payment_offers_to_top_up_the_missing_amount(logged_in, customer, tariff):
    top_up(customer, "100.00")
    service = ordered_service(customer, tariff)

    response = logged_in.post(service_url(service, "service_pay"), follow=True)

    assert Page(response).inputs["amount"].get("value") == "250.00"


# The panel password


@pytest.fixture
def active_service(customer, tariff):
    return ordered_service(
        customer, tariff, status=ServiceStatus.ACTIVE, panel_username="user77", panel_password=PANEL_PASSWORD, paid_at="2025-01-01T00:00Z"
    )


def test_panel_password_is_not_in_the_page_until_the_client_enters_its_own_password(logged_in, active_service):
    for url in (service_url(active_service), service_url(active_service) + "?show=1"):
        response = logged_in.get(url)
        assert response.status_code == 200
        assert Page(response).text("panel-username") == "user77"
        assert PANEL_PASSWORD not in response.content.decode()
        assert "panel-password" not in Page(response).ids


def test_panel_password_stays_hidden_after_a_wrong_password(logged_in, active_service):
    response = logged_in.post(service_url(active_service), {"password": "not-my-password"})

    assert response.status_code == 200
    assert "That is not your password." in response.content.decode()
    assert PANEL_PASSWORD not in response.content.decode()
    assert PANEL_PASSWORD not in logged_in.get(service_url(active_service) + "?show=1").content.decode()


def test_panel_password_is_shown_after_the_right_password_and_then_on_request_for_a_while(logged_in, active_service):
    response = logged_in.post(service_url(active_service), {"password": PASSWORD})

    assert Page(response).text("panel-password") == PANEL_PASSWORD
    assert Page(logged_in.get(service_url(active_service) + "?show=1")).text("panel-password") == PANEL_PASSWORD
    assert PANEL_PASSWORD not in logged_in.get(service_url(active_service)).content.decode()


def test_panel_password_needs_the_password_again_once_the_reveal_time_is_over(logged_in, active_service, settings):
    settings.PASSWORD_REVEAL_SECONDS = 0

    assert Page(logged_in.post(service_url(active_service), {"password": PASSWORD})).text("panel-password") == PANEL_PASSWORD

    assert PANEL_PASSWORD not in logged_in.get(service_url(active_service) + "?show=1").content.decode()


# What a client may do to its service


def post_action(logged_in, service, action):
    """The client's request, confirmed where the page asks for a confirmation (tests/billing/test_client_day_one.py)."""
    response = logged_in.post(service_url(service, "service_action"), {"action": action, "confirm": "yes"}, follow=True)
    assert response.redirect_chain == [(service_url(service), 302)]
    return response


def test_client_suspends_an_active_service_through_the_panel(logged_in, user, active_service):
    response = post_action(logged_in, active_service, "suspend")

    assert messages_of(response) == [
        f"Suspension of service #{active_service.pk} requested: the control panel does it within a few seconds."
    ]
    operation = Operation.objects.get(service=active_service)
    assert (operation.action, operation.status, operation.requested_by) == (PanelAction.SUSPEND, OperationStatus.QUEUED, user)
    assert operation.payload == {"suspend_reason": "client"}
    active_service.refresh_from_db()
    assert active_service.status == ServiceStatus.ACTIVE


def test_client_resumes_a_service_it_suspended(logged_in, active_service):
    Service.objects.filter(pk=active_service.pk).update(status=ServiceStatus.SUSPENDED, suspend_reason="client")
    assert 'value="resume"' in logged_in.get(service_url(active_service)).content.decode()

    response = post_action(logged_in, active_service, "resume")

    assert messages_of(response) == [
        f"Resumption of service #{active_service.pk} requested: the control panel does it within a few seconds."
    ]
    assert list(Operation.objects.values_list("service", "action")) == [(active_service.pk, PanelAction.RESUME)]


@pytest.mark.parametrize("suspend_reason", ["staff", "nonpayment"])
def test_client_cannot_resume_a_service_suspended_by_staff(logged_in, active_service, suspend_reason):
    Service.objects.filter(pk=active_service.pk).update(status=ServiceStatus.SUSPENDED, suspend_reason=suspend_reason)
    assert 'value="resume"' not in logged_in.get(service_url(active_service)).content.decode()

    response = post_action(logged_in, active_service, "resume")

    assert messages_of(response) == ["Only a service you suspended yourself can be resumed here: please contact support."]
    assert not Operation.objects.exists()
    active_service.refresh_from_db()
    assert (active_service.status, active_service.suspend_reason) == (ServiceStatus.SUSPENDED, suspend_reason)


def test_client_deletes_an_unpaid_service_at_once_without_the_panel(logged_in, user, customer, tariff):
    service = ordered_service(customer, tariff)

    post_action(logged_in, service, "close")

    service.refresh_from_db()
    assert service.status == ServiceStatus.DELETED
    assert not Operation.objects.exists()
    change = service.status_changes.get()
    assert (change.from_status, change.to_status, change.changed_by) == (ServiceStatus.ORDERED, ServiceStatus.DELETED, user)


@pytest.mark.parametrize("action", ["change_password", "set_limits", "open", "sync", ""])
def test_client_cannot_ask_for_staff_actions(logged_in, active_service, action):
    response = post_action(logged_in, active_service, action)

    assert messages_of(response) == ["This action is not available."]
    assert not Operation.objects.exists()


# Order history


def test_order_history_lists_every_service_including_deleted_ones_and_the_payments(logged_in, customer, tariff):
    deleted = ordered_service(customer, tariff, status=ServiceStatus.DELETED, domain="gone.example.com")
    active = ordered_service(customer, tariff, status=ServiceStatus.ACTIVE, domain="live.example.com", panel_username="user9")
    pending = Payment.objects.create(client=customer, gateway="manual", amount=Decimal("500.00"), currency="RUB", reference="PAAAA1")
    paid = Payment.objects.create(
        client=customer, gateway="test", amount=Decimal("20.00"), currency="RUB", reference="PBBBB2", status=PaymentStatus.PAID
    )
    Payment.objects.create(client=ClientFactory(), gateway="manual", amount=Decimal("1.00"), currency="RUB", reference="POTHER")

    response = logged_in.get(reverse("orders"))

    assert response.status_code == 200
    services_table, payments_table = response.content.decode().split("<h2>Payments</h2>")
    rows = Page(response).table()
    assert [str(active.pk), "Start", "live.example.com", "Active", "—", "—", "user9"] in rows
    assert [str(deleted.pk), "Start", "gone.example.com", "Deleted", "—", "—", "—"] in rows
    assert "gone.example.com" in services_table
    assert [(row[0], row[2], row[3]) for row in rows if row[0] in ("PAAAA1", "PBBBB2", "POTHER")] == [
        ("PBBBB2", "20.00 RUB", "Paid"),
        ("PAAAA1", "500.00 RUB", "Awaiting payment"),
    ]
    assert f'href="{reverse("payment_detail", args=[pending.pk])}"' in payments_table
    assert f'href="{reverse("payment_detail", args=[paid.pk])}"' in payments_table


# Language


def test_language_switch_while_logged_in_is_saved_on_the_client(logged_in, customer):
    switched = logged_in.post(reverse("set_language"), {"language": "ru", "next": reverse("client_area")})

    assert switched["Location"] == "/ru/account/"
    assert switched.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    customer.refresh_from_db()
    assert customer.language == "ru"
    assert 'lang="ru"' in logged_in.get(switched["Location"]).content.decode()


def test_login_brings_back_the_clients_language(client, customer):
    Client.objects.filter(pk=customer.pk).update(language="ru")

    login = client.post(reverse("login"), {"username": "ann@example.com", "password": PASSWORD})

    assert login.status_code == 302
    assert login["Location"] == "/ru/account/"
    assert login.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    assert 'lang="ru"' in client.get(login["Location"]).content.decode()


def test_language_switch_of_an_anonymous_visitor_changes_no_client(client, customer):
    response = client.post(reverse("set_language"), {"language": "ru", "next": "/"})

    assert response["Location"] == "/ru/"
    customer.refresh_from_db()
    assert customer.language == "en"


# Query counts


def queries_of(client, url):
    """Queries of one GET of `url`, after a first GET has warmed caches."""
    assert client.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def add_shop_tariffs(count):
    module = ProcessingModuleFactory()
    for _ in range(count):
        tariff = TariffPlanFactory(processing_module=module, monthly_price=False, setup_fee=Decimal("10.00"))
        TariffPrice.objects.bulk_create(
            TariffPrice(tariff=tariff, period=period, price=Decimal("100.00") * period) for period in (1, 3, 12)
        )
        TariffResource.objects.bulk_create(
            TariffResource(tariff=tariff, kind=kind, included=5, unit_price=Decimal("1.00")) for kind in ("databases", "disk", "mailboxes")
        )


SHOP_QUERIES = 3  # tariffs with their module, prices, resources


def test_shop_window_queries_do_not_grow_with_the_number_of_tariffs(client, db, django_assert_max_num_queries):
    add_shop_tariffs(5)
    few = queries_of(client, reverse("shop"))
    add_shop_tariffs(45)
    many = queries_of(client, reverse("shop"))

    assert client.get(reverse("shop")).content.decode().count('<li class="card tariff">') == 50  # from the cache: no context
    assert many == few
    with django_assert_max_num_queries(SHOP_QUERIES):
        client.get(reverse("shop"))


def add_services(customer, count):
    tariffs = [TariffPlanFactory(processing_module=ProcessingModuleFactory()) for _ in range(3)]
    services = Service.objects.bulk_create(
        Service(
            client=customer,
            tariff=tariffs[i % 3],
            domain=f"site{i}.example.com",
            status=[ServiceStatus.ACTIVE, ServiceStatus.ORDERED, ServiceStatus.DELETED][i % 3],
            panel_username=f"user{i}",
        )
        for i in range(count)
    )
    ServiceResource.objects.bulk_create(
        ServiceResource(service=service, kind=kind, quantity=3) for service in services for kind in ("databases", "disk")
    )
    Payment.objects.bulk_create(
        Payment(client=customer, gateway="manual", amount=Decimal("10.00"), currency="RUB", reference=f"P{customer.pk}-{len(services)}-{i}")
        for i in range(count // 10)
    )
    top_up(customer, "1.00")


# session, user, client, balance, what auto-renew charges in the next 7 days and the balance again (the banner), entries,
# services, their resources
CLIENT_AREA_QUERIES = 9
# session, user, client, services, their resources, payments
ORDERS_QUERIES = 6


@pytest.mark.parametrize(("url_name", "pinned"), [("client_area", CLIENT_AREA_QUERIES), ("orders", ORDERS_QUERIES)])
def test_client_pages_queries_do_not_grow_with_the_number_of_services(logged_in, customer, django_assert_max_num_queries, url_name, pinned):
    add_services(customer, 10)
    few = queries_of(logged_in, reverse(url_name))
    add_services(customer, 190)
    many = queries_of(logged_in, reverse(url_name))

    assert customer.services.count() == 200
    assert many == few
    with django_assert_max_num_queries(pinned):
        html = logged_in.get(reverse(url_name)).content.decode()
    assert "site189.example.com" in html  # an active service of the second batch
