"""`__in` on an integer column: values no row can hold match nothing instead of raising."""

import pytest

from billing.models import Client
from tests.factories import ClientFactory


@pytest.mark.django_db
def test_in_keeps_the_ids_that_can_exist_and_ignores_the_rest():
    kept = ClientFactory()
    ClientFactory()

    found = Client.objects.filter(pk__in=[str(kept.pk), "abc", "²", "1e400", 2**64, -(2**70), "\x00"])

    assert list(found) == [kept]


@pytest.mark.django_db
def test_in_with_nothing_that_can_exist_matches_no_row():
    ClientFactory()

    assert not Client.objects.filter(pk__in=["abc", 10**30]).exists()


@pytest.mark.django_db
def test_in_with_a_subquery_is_left_to_the_database():
    client = ClientFactory()

    assert list(Client.objects.filter(pk__in=Client.objects.values("pk"))) == [client]
