"""The forms work with a keyboard, and every field is named by a label."""

from playwright.sync_api import expect

from tests.browser.helpers import inputs_without_label

FOCUSED = """() => {
    const el = document.activeElement;
    return el.id || `${el.tagName.toLowerCase()}:${el.getAttribute("type") || ""}:${el.textContent.trim()}`;
}"""


def test_tab_on_the_login_page_reaches_the_email_then_the_password_then_the_submit_button(page):
    # Given the login page.
    page.goto("/accounts/login/")

    # When the visitor presses Tab from the top of the page.
    focused = []
    for _ in range(20):
        page.keyboard.press("Tab")
        focused.append(page.evaluate(FOCUSED))
        if focused[-1] == "button:submit:Log in" and "id_password" in focused:
            break

    # Then the email, the password and the "Log in" button come one after the other.
    start = focused.index("id_username")
    assert focused[start : start + 3] == ["id_username", "id_password", "button:submit:Log in"], focused
    # And what is typed there lands in the fields.
    page.get_by_label("Email").focus()
    page.keyboard.type("kbd@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type("secret")
    expect(page.get_by_label("Email")).to_have_value("kbd@example.com")
    expect(page.get_by_label("Password")).to_have_value("secret")


def test_every_input_of_the_registration_and_order_forms_has_a_label(page, catalog):
    # Given the registration form: each input has a label.
    page.goto("/accounts/register/")
    assert inputs_without_label(page, "main form") == []
    for label in ("Email", "Name or company", "Password"):
        expect(page.get_by_label(label)).to_have_count(1)

    # And the order forms of both tariffs.
    for tariff, labels in (
        (catalog.hosting, ("Billing period", "Domain", "Databases")),
        (catalog.storage, ("Billing period", "FTP users")),  # FTP storage has no domain
    ):
        page.goto(f"/order/{tariff.pk}/")
        assert inputs_without_label(page, "#order-form") == [], tariff.name
        for label in labels:
            expect(page.get_by_label(label)).to_have_count(1)
