"""The TariffPlan admin (modeltranslation + price and resource inlines), driven over HTTP."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.choices import BillingPeriod, ProductType, ResourceKind
from billing.models import TariffPlan, TariffPrice, TariffResource
from tests.factories import ProcessingModuleFactory, TariffPlanFactory

ADD_URL = reverse("admin:billing_tariffplan_add")


def inline_data(prefix, rows):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{name}": value for name, value in row.items()})
    return data


def tariff_data(module, *, prices=None, resources=None, **overrides):
    data = {
        "name_en": "Start",
        "name_ru": "Старт",
        "description_en": "",
        "description_ru": "",
        "product_type": ProductType.VHOST,
        "processing_module": module.pk,
        "account_template": "Site hosting",
        "username_template": "user@ID@",
        "currency": "RUB",
        "setup_fee": "0",
        "is_visible": "on",
        "is_enabled": "on",
        "ordering": "0",
        "_save": "Save",
    }
    data.update(overrides)
    data.update(inline_data("prices", prices if prices is not None else [{"period": BillingPeriod.MONTH, "price": "300.00"}]))
    data.update(
        inline_data("resources", resources if resources is not None else [{"kind": "databases", "included": "10", "unit_price": "20.00"}])
    )
    return data


def form_errors(response, field):
    return " ".join(response.context["adminform"].form.errors.get(field, []))


def inline_errors(response, prefix):
    """Every message of one inline formset: per-form field errors and the formset's own."""
    (formset,) = [inline.formset for inline in response.context["inline_admin_formsets"] if inline.formset.prefix == prefix]
    messages = [message for errors in formset.errors for field_errors in errors.values() for message in field_errors]
    return " ".join([*messages, *formset.non_form_errors()])


def assert_nothing_saved():
    assert not TariffPlan.objects.exists()
    assert not TariffPrice.objects.exists()
    assert not TariffResource.objects.exists()


@pytest.fixture
def vhost_module(db):
    return ProcessingModuleFactory(product_type=ProductType.VHOST)


def test_tariff_add_page_has_translated_names_and_both_inlines(admin_client):
    response = admin_client.get(ADD_URL)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert {"name_en", "name_ru"} <= set(form.fields)
    assert "name" not in form.fields
    assert [inline.formset.prefix for inline in response.context["inline_admin_formsets"]] == ["prices", "resources"]


def test_tariff_page_explains_the_username_template_macros_with_an_example(admin_client):
    html = admin_client.get(ADD_URL).content.decode()

    for macro in ["@USERNAME@", "@DOMAIN@", "@ID@", "@ACCOUNT_ID@"]:
        assert macro in html
    assert "Example: user@ID@ for service 117 gives user117." in html


def test_tariff_page_shows_the_external_ftp_storage_template_advice(admin_client, vhost_module):
    tariff = TariffPlanFactory(processing_module=vhost_module)

    for url in [ADD_URL, reverse("admin:billing_tariffplan_change", args=[tariff.pk])]:
        html = admin_client.get(url).content.decode()
        assert "For External FTP-storage, use an ISPmanager template that forbids domains, databases and shell access" in html


def test_shared_hosting_tariff_with_monthly_price_and_databases_resource_is_saved(admin_client, vhost_module):
    resources = [{"kind": "databases", "included": "10", "unit_price": "20.00", "max_quantity": "50"}]

    response = admin_client.post(ADD_URL, tariff_data(vhost_module, resources=resources, setup_fee="150.00"))

    assert response.status_code == 302
    tariff = TariffPlan.objects.get()
    assert (tariff.name_en, tariff.name_ru) == ("Start", "Старт")
    assert tariff.product_type == ProductType.VHOST
    assert tariff.processing_module == vhost_module
    assert tariff.account_template == "Site hosting"
    assert tariff.username_template == "user@ID@"
    assert tariff.setup_fee == Decimal("150.00")
    assert list(tariff.prices.values_list("period", "price")) == [(BillingPeriod.MONTH, Decimal("300.00"))]
    assert list(tariff.resources.values_list("kind", "included", "unit_price", "max_quantity")) == [
        (ResourceKind.DATABASES, 10, Decimal("20.00"), 50)
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("user@FOO@", "Unknown macro @FOO@"),
        ("@ID@user", "A login must start with a latin letter or _"),
        ("@ACCOUNT_ID@", "A login must start with a latin letter or _"),
        ("user @ID@", "The characters ' ' cannot be part of a login"),
        ("юзер@ID@", "cannot be part of a login"),
        ("user", "Add a macro such as @ID@"),
        ("u" * 40 + "@ID@", "The template is too long: a login has at most 32 characters."),
    ],
    ids=["unknown-macro", "starts-with-id", "only-account-id", "space", "cyrillic", "no-macro", "too-long"],
)
def test_tariff_with_unusable_username_template_is_refused_and_not_saved(admin_client, vhost_module, template, message):
    response = admin_client.post(ADD_URL, tariff_data(vhost_module, username_template=template))

    assert response.status_code == 200
    assert message in form_errors(response, "username_template")
    assert_nothing_saved()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("setup_fee", "-1.00", "Ensure this value is greater than or equal to 0."),
        ("name_en", "", "This field is required."),
        ("account_template", "", "This field is required."),
        ("account_template", "Site\r\nhosting", "Use one line of visible characters"),
        ("account_template", "Site\thosting\u200e", "Use one line of visible characters"),
    ],
    ids=["negative-setup-fee", "no-english-name", "no-account-template", "template-with-line-break", "template-with-tab-and-rtl-mark"],
)
def test_tariff_with_bad_main_field_is_refused_and_not_saved(admin_client, vhost_module, field, value, message):
    response = admin_client.post(ADD_URL, tariff_data(vhost_module, **{field: value}))

    assert response.status_code == 200
    assert message in form_errors(response, field)
    assert_nothing_saved()


def test_tariff_with_module_of_another_product_type_is_refused_and_not_saved(admin_client, vhost_module):
    storage_module = ProcessingModuleFactory(product_type=ProductType.STORAGE, name="FTP storage 1")

    response = admin_client.post(ADD_URL, tariff_data(storage_module, product_type=ProductType.VHOST))

    assert response.status_code == 200
    assert "FTP storage 1 serves External FTP-storage, not Shared hosting" in form_errors(response, "processing_module")
    assert_nothing_saved()


@pytest.mark.parametrize(
    ("prices", "resources", "prefix", "message"),
    [
        ([{"period": BillingPeriod.MONTH, "price": "-5.00"}], None, "prices", "Ensure this value is greater than or equal to 0."),
        (
            None,
            [{"kind": "databases", "included": "10", "unit_price": "-1.00"}],
            "resources",
            "Ensure this value is greater than or equal to 0.",
        ),
        (
            None,
            [{"kind": "databases", "included": "10", "unit_price": "0", "max_quantity": "5"}],
            "resources",
            "The maximum cannot be below the included amount (10).",
        ),
        (None, [{"kind": "shell", "included": "2", "unit_price": "0"}], "resources", "Shell access is on or off: enter 0 or 1."),
        (
            None,
            [{"kind": "ssl", "included": "1", "unit_price": "0", "max_quantity": "3"}],
            "resources",
            "SSL is on or off: enter 0 or 1.",
        ),
        (
            None,
            [{"kind": "databases", "included": "10", "unit_price": "0"}, {"kind": "databases", "included": "5", "unit_price": "0"}],
            "resources",
            "Please correct the duplicate data",
        ),
        (
            [{"period": BillingPeriod.MONTH, "price": "300"}, {"period": BillingPeriod.MONTH, "price": "250"}],
            None,
            "prices",
            "Please correct the duplicate data",
        ),
        ([{"period": "", "price": ""}], None, "prices", "This field is required."),
    ],
    ids=[
        "negative-price",
        "negative-unit-price",
        "max-below-included",
        "flag-included-2",
        "flag-max-3",
        "same-resource-twice",
        "same-period-twice",
        "price-row-left-empty",
    ],
)
def test_tariff_with_bad_inline_row_is_refused_and_not_saved(admin_client, vhost_module, prices, resources, prefix, message):
    response = admin_client.post(ADD_URL, tariff_data(vhost_module, prices=prices, resources=resources))

    assert response.status_code == 200
    assert message in inline_errors(response, prefix)
    assert_nothing_saved()


def test_tariff_change_with_bad_username_template_changes_nothing(admin_client, vhost_module):
    tariff = TariffPlanFactory(processing_module=vhost_module, name="Kept", username_template="user@ID@")
    price = tariff.prices.get()
    data = tariff_data(vhost_module, name_en="Renamed", username_template="@ID@")
    data.update(
        inline_data("prices", [{"id": price.pk, "tariff": tariff.pk, "period": BillingPeriod.MONTH, "price": "999.00"}])
        | {"prices-INITIAL_FORMS": "1"}
    )
    data.update(inline_data("resources", []))

    response = admin_client.post(reverse("admin:billing_tariffplan_change", args=[tariff.pk]), data)

    assert response.status_code == 200
    assert "A login must start with a latin letter" in form_errors(response, "username_template")
    tariff.refresh_from_db()
    assert (tariff.name_en, tariff.username_template) == ("Kept", "user@ID@")
    assert tariff.prices.get().price == Decimal("300.00")


def test_tariff_without_any_price_row_is_refused_and_not_saved(admin_client, vhost_module):
    response = admin_client.post(ADD_URL, tariff_data(vhost_module, prices=[]))

    assert response.status_code == 200
    assert "Please submit at least 1 form." in inline_errors(response, "prices")
    assert_nothing_saved()
