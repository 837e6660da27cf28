"""The OpenAPI document a service serves at ``/schema/openapi.json``, made to tell the truth.

Litestar documents errors as ``application/json`` with its own body and knows nothing of the
statuses a route raises on purpose. Before the document is first served, every operation gets:

- each problem it can answer, as ``application/problem+json`` with the ``Problem`` schema: 400
  and 413 where a body or parameters are read, 401 for the internal credential, and the statuses
  the service lists per route in :class:`ApiDocs`;
- its security: the ``X-Internal-Token`` apiKey on every route of a private service, plus the
  bearer token where the route reads ``Authorization`` itself;
- the gateway's identity header where the route needs a signed-in user, and any extra success
  status (``POST /billing/customer`` answers 201 or 200).

Operations are named ``"METHOD /path"`` with the path as the document spells it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.openapi.plugins import JsonRenderPlugin

from shared._internal import INTERNAL_TOKEN_HEADER, USER_ID_HEADER
from shared._problems import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from litestar.connection import Request

__all__ = [
    "BEARER_SCHEME",
    "CREDENTIAL_PROBLEM",
    "INTERNAL_SCHEME",
    "PROBLEM_SCHEMA",
    "ApiDocs",
    "TruthfulJsonRenderPlugin",
    "document_problems",
    "documented",
    "problem_response_object",
]

INTERNAL_SCHEME = "internalToken"
BEARER_SCHEME = "bearer"
CREDENTIAL_PROBLEM = "The internal credential is missing or wrong."
"""The description of the 401 every private route has; the gateway drops it from its document."""

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; other members may be added.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Which input failed validation, when one did.",
        },
    },
}

_TITLES = {
    400: "The request is malformed: a value, a parameter or the JSON body (too deep, wrong type).",
    401: "Unauthorized.",
    402: "The payment was refused.",
    403: "Forbidden.",
    404: "Not found, or not the caller's.",
    405: "This method is not allowed on this path.",
    408: "The request body did not arrive in time.",
    409: "The request contradicts stored state.",
    413: "The request body is larger than accepted.",
    422: "Well-formed, but the values are not acceptable.",
    429: "Too many requests; retry after Retry-After seconds.",
    502: "A dependency answered badly.",
    503: "A dependency is unavailable; retry later.",
    504: "A dependency did not answer in time.",
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_IDENTITY_PARAMETER = {
    "name": USER_ID_HEADER,
    "in": "header",
    "required": True,
    "description": "The signed-in user, set by the gateway after checking the bearer token.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}$"},
}


def documented(**constraints: Any) -> msgspec.Meta:
    """A field's constraints for the document only, by Litestar ``Schema`` attribute name
    (``min_length``, ``maximum``, ``pattern``...): the domain checks them and answers 422 with a
    clear sentence, where a decoder's 400 would say less."""
    return msgspec.Meta(extra_json_schema={"extra": constraints})


def problem_response_object(status: int, description: str | None = None) -> dict[str, Any]:
    return {
        "description": description or _TITLES.get(status, "Error."),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


@dataclass(frozen=True)
class ApiDocs:
    """What a service's routes answer beyond what Litestar can see, by ``"METHOD /path"``."""

    problems: Mapping[str, Collection[int]] = field(default_factory=dict)
    """The problem statuses each operation raises on purpose."""
    bearer: Collection[str] = ()
    """Operations that read the bearer token from ``Authorization`` themselves."""
    identity: Collection[str] = ()
    """Operations that need the gateway's identity header (401 without it)."""
    also_succeeds: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    """Success statuses besides the one Litestar documents, with their description."""
    operations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Members set on an operation as given, e.g. the ``requestBody`` of a route that reads its
    body raw."""


def document_problems(schema: dict[str, Any], docs: ApiDocs, *, private: bool) -> None:
    """Rewrite ``schema`` (an OpenAPI document as a dict) in place; see the module docstring."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schemes = components.setdefault("securitySchemes", {})
    if private:
        schemes[INTERNAL_SCHEME] = {
            "type": "apiKey",
            "in": "header",
            "name": INTERNAL_TOKEN_HEADER,
            "description": "The internal credential; only the gateway and the services hold it.",
        }
    if docs.bearer:
        schemes[BEARER_SCHEME] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            key = f"{method.upper()} {path}"
            _document_operation(operation, key, docs, private=private)


def _document_operation(
    operation: dict[str, Any], key: str, docs: ApiDocs, *, private: bool
) -> None:
    operation.update(docs.operations.get(key, {}))
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code in [code for code in responses if code[:1] in ("4", "5")]:
        del responses[code]  # Litestar's application/json error bodies are not what we send
    if key in docs.identity:
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == USER_ID_HEADER for p in parameters):
            parameters.append(dict(_IDENTITY_PARAMETER))
    statuses = set(docs.problems.get(key, ()))
    if "requestBody" in operation:
        statuses |= {400, 413}
    if operation.get("parameters"):
        statuses.add(400)
    if key in docs.identity or key in docs.bearer:
        statuses.add(401)
    for problem in sorted(statuses):
        responses[str(problem)] = problem_response_object(problem)
    success = next((s for s in responses if s.startswith("2")), None)
    for status, description in docs.also_succeeds.get(key, {}).items():
        copied = dict(responses[success]) if success else {}
        copied["description"] = description
        responses[str(status)] = copied
    security: dict[str, list[str]] = {}
    if private:
        security[INTERNAL_SCHEME] = []
        if "401" not in responses:
            responses["401"] = problem_response_object(401, CREDENTIAL_PROBLEM)
    if key in docs.bearer:
        security[BEARER_SCHEME] = []
    if security:
        operation["security"] = [security]


class TruthfulJsonRenderPlugin(JsonRenderPlugin):
    """Serves ``/schema/openapi.json`` after :func:`document_problems` ran on it, once."""

    def __init__(self, docs: ApiDocs, *, private: bool) -> None:
        super().__init__()
        self.docs = docs
        self.private = private
        self._documented: int | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        # Litestar builds the dict once and hands the same one to every request.
        if self._documented != id(openapi_schema):
            document_problems(openapi_schema, self.docs, private=self.private)
            self._documented = id(openapi_schema)
        return super().render(request, openapi_schema)
