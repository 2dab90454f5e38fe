import pytest

from tests.factories import ClientFactory, UserFactory


@pytest.fixture
def user(db):
    return UserFactory(username="ann@example.com")


@pytest.fixture
def customer(user):
    customer = ClientFactory(name="Ann's Bakery", email=user.email)
    customer.users.add(user)
    return customer


@pytest.fixture
def logged_in(client, user, customer):
    """A browser logged in as the client's user."""
    client.force_login(user)
    return client
