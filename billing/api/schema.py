"""What drf-spectacular cannot see by itself: the bearer tokens and the one error shape of every answer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from billing.api.idempotency import HEADER, HEADER_PARAMETER


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "billing.api.authentication.BearerTokenAuthentication"
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token `<prefix>.<secret>`, made in the client area or the admin.",
        }


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the Idempotency-Key header of every action wrapped by @idempotent."""

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        if getattr(handler, "idempotent", False):
            parameters = [*parameters, HEADER_PARAMETER]
        return parameters


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "A stable code: invalid, not_found, insufficient_funds, idempotency_key_reused, ..."},
        "message": {"type": "string", "description": "What went wrong, in the request's language (Accept-Language)."},
        "fields": {
            "type": "object",
            "description": "Messages per request field, when fields were wrong.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["code", "message", "fields"],
}
ERRORS = {
    "400": "invalid: the request or one of its fields is not valid (see `fields`), or a rule of the service refused it.",
    "401": "not_authenticated / authentication_failed: no token, or an invalid, expired or revoked one.",
    "403": "permission_denied: the token lacks the scope, or the user may not do this.",
    "404": "not_found: no such object, or not one this token may see.",
    "429": "throttled: too many requests; retry after the Retry-After header's seconds.",
}
IDEMPOTENCY_ERRORS = {
    "409": "request_in_progress: a request with this Idempotency-Key is still running.",
    "422": "idempotency_key_reused: the Idempotency-Key was already used for another request.",
}


def add_error_responses(result, generator, request, public):
    """Postprocessing hook: every operation documents the error answers it can give, all in the Error shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            errors = dict(ERRORS)
            if any(parameter.get("name") == HEADER for parameter in operation.get("parameters", [])):
                errors.update(IDEMPOTENCY_ERRORS)
            for status, description in errors.items():
                responses.setdefault(status, {"description": description, **reference})
    return result
