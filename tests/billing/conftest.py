import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

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


def migrate(targets):
    """Move the database to the migrations `targets`; the apps as they were there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def latest_schema_after():
    """For a test that moves the schema back: every later test needs all of it again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
