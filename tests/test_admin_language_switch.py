import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_staff_switch_the_admin_to_russian_and_back(admin_client):
    page = admin_client.get("/admin/")
    assert 'name="language" value="ru"' in page.text

    switched = admin_client.post(reverse("set_language"), {"language": "ru", "next": "/admin/"}, follow=True)
    assert switched.redirect_chain[-1][0] == "/ru/admin/"
    assert 'lang="ru"' in switched.text
    assert 'action="/ru/i18n/setlang/"' in switched.text

    back = admin_client.post("/ru/i18n/setlang/", {"language": "en", "next": "/ru/admin/"}, follow=True)
    assert back.redirect_chain[-1][0] == "/admin/"
