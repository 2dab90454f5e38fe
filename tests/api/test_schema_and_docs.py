"""The OpenAPI schema is valid and tells what the API does (bearer tokens, Idempotency-Key, error shape); the docs page is self-hosted."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.generators import EndpointEnumerator

from billing.api.idempotency import HEADER, idempotent

# Every function that @idempotent returns runs this code object.
IDEMPOTENT_CODE = idempotent(lambda view, request: None).__code__
ERROR_REFERENCE = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", validate=True, fail_on_warn=True, file=str(tmp_path / "schema.yaml"))

    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.")


def test_the_schema_offers_bearer_tokens_and_every_private_operation_asks_for_one(schema):
    assert schema["components"]["securitySchemes"]["bearerToken"]["type"] == "http"
    assert schema["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    for path, method, operation in _operations(schema):
        assert {"bearerToken": []} in operation["security"], f"{method.upper()} {path}"


def _handlers():
    """(schema path, method, the function answering it) for every API endpoint."""
    for path, _regex, method, callback in EndpointEnumerator().get_api_endpoints():
        actions = getattr(callback, "actions", None)
        name = actions[method.lower()] if actions else method.lower()
        yield path.replace("{pk}", "{id}"), method.lower(), getattr(callback.cls, name)  # the schema says id, as spectacular does


def test_every_idempotent_post_documents_the_idempotency_key_header_and_its_two_errors(schema):
    idempotent_posts = set()
    for path, method, handler in _handlers():
        if getattr(handler, "__code__", None) is IDEMPOTENT_CODE:
            assert method == "post", f"@idempotent on {method.upper()} {path}"
            idempotent_posts.add(path)

    for path, method, operation in _operations(schema):
        parameters = {(parameter["in"], parameter["name"]): parameter for parameter in operation.get("parameters", [])}
        header = parameters.get(("header", HEADER))
        if method == "post" and path in idempotent_posts:
            assert header is not None and header["required"] is True, f"POST {path} lacks the {HEADER} header"
            assert {"409", "422"} <= set(operation["responses"]), f"POST {path}"
        else:
            assert header is None, f"{method.upper()} {path} documents an {HEADER} it does not read"


def test_every_4xx_of_every_operation_is_the_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "message", "fields"]
    for path, method, operation in _operations(schema):
        statuses = {status for status in operation["responses"] if status.startswith("4")}
        assert {"400", "401", "403", "404", "429"} <= statuses, f"{method.upper()} {path}"
        for status in statuses:
            content = operation["responses"][status]["content"]
            assert content == {"application/json": {"schema": ERROR_REFERENCE}}, f"{method.upper()} {path} {status}"


def test_every_operation_has_an_id_and_a_success_answer(schema):
    ids = [operation["operationId"] for _path, _method, operation in _operations(schema)]
    assert len(ids) == len(set(ids))
    for path, method, operation in _operations(schema):
        assert any(status.startswith("2") for status in operation["responses"]), f"{method.upper()} {path}"


def test_the_schema_is_served_as_yaml_and_json(client, db):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/schema/?format=json")["Content-Type"].startswith("application/vnd.oai.openapi+json")


def test_the_docs_page_loads_its_scripts_and_styles_from_this_site(client, db):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert any(asset.endswith("swagger-ui.css") for asset in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not among the static files"
    assert not re.search(r"https?://", page.replace("http://www.w3.org", ""))
