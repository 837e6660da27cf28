"""``GET /api/v1/openapi.json``: the public API as one OpenAPI 3.1 document.

Composed from the private services' own documents (``/schema/openapi.json``, fetched over HTTP
with the internal credential, never by importing them) and filtered by the route table: only the
public routes, at their ``/api/v1`` paths, with the methods the table lets through. On the way
out the internal credential and the identity headers the gateway sets are removed, and the bearer
token, and the gateway's own answers (502, 503, 504), are added. The document is kept for
``ttl`` seconds, so a redeployed service shows up without restarting the gateway.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from gateway.proxy import Upstream
from gateway.routes import API_PREFIX, ROUTES, Route
from shared import (
    CREDENTIAL_PROBLEM,
    INTERNAL_TOKEN_HEADER,
    PROBLEM_SCHEMA,
    USER_EMAIL_HEADER,
    USER_ID_HEADER,
    BadGatewayError,
    current_request_id,
    problem_response_object,
)

__all__ = ["OPENAPI_PATH", "PublicApiDocument", "compose_public_document"]

OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
_UPSTREAM_DOCUMENT = "/schema/openapi.json"
_PARAMETER = re.compile(r"\{[^}]*\}")
_GATEWAY_HEADERS = {h.lower() for h in (INTERNAL_TOKEN_HEADER, USER_ID_HEADER, USER_EMAIL_HEADER)}
_BEARER_PROBLEM = "The bearer token is missing, invalid, expired or revoked."
_REF = "#/components/schemas/"


def _template(path: str) -> str:
    return _PARAMETER.sub("{}", path)


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref[len(_REF) :]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _rename_refs(value: Any, names: Mapping[str, str]) -> None:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF) and ref[len(_REF) :] in names:
            value["$ref"] = _REF + names[ref[len(_REF) :]]
        for item in value.values():
            _rename_refs(item, names)
    elif isinstance(value, list):
        for item in value:
            _rename_refs(item, names)


def _public_operation(operation: dict[str, Any], route: Route) -> dict[str, Any]:
    public = copy.deepcopy(operation)
    parameters = [
        parameter
        for parameter in public.get("parameters", [])
        if not (
            parameter.get("in") == "header"
            and str(parameter.get("name", "")).lower() in _GATEWAY_HEADERS
        )
    ]
    if parameters:
        public["parameters"] = parameters
    else:
        public.pop("parameters", None)
    responses: dict[str, Any] = public.setdefault("responses", {})
    if route.needs_token:
        public["security"] = [{"bearer": []}]
        responses["401"] = problem_response_object(401, _BEARER_PROBLEM)
        responses["503"] = problem_response_object(503)
    else:
        public.pop("security", None)
        if responses.get("401", {}).get("description") == CREDENTIAL_PROBLEM:
            del responses["401"]
    if "requestBody" in public:
        responses["413"] = problem_response_object(413)
    responses["502"] = problem_response_object(502)
    responses["504"] = problem_response_object(504)
    return public


def compose_public_document(upstream_documents: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The public document from the services' documents, by upstream name (pure: tested alone)."""
    paths: dict[str, dict[str, Any]] = {}
    used: dict[str, set[str]] = {name: set() for name in upstream_documents}
    for route in ROUTES:
        document = upstream_documents.get(route.upstream)
        if document is None:
            continue
        wanted = _template(route.upstream_path(route.path))
        for upstream_path, item in document.get("paths", {}).items():
            if _template(upstream_path) != wanted:
                continue
            prefix = API_PREFIX if route.path.startswith(API_PREFIX) else ""
            for method in sorted(route.methods - {"HEAD"}):
                operation = item.get(method.lower())
                if operation is None:
                    continue
                public = _public_operation(operation, route)
                paths.setdefault(prefix + upstream_path, {})[method.lower()] = public
                used[route.upstream].update(_refs(public))
    schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
    for name, document in upstream_documents.items():
        available = document.get("components", {}).get("schemas", {})
        wanted_names, pending = set(), list(used[name])
        while pending:  # the schemas the public operations reach, and the ones those reach
            schema_name = pending.pop()
            if schema_name in wanted_names or schema_name not in available:
                continue
            wanted_names.add(schema_name)
            pending.extend(_refs(available[schema_name]))
        renames = {
            schema_name: f"{name.title()}{schema_name}"
            for schema_name in wanted_names
            if schema_name in schemas and schemas[schema_name] != available[schema_name]
        }
        for schema_name in wanted_names:
            schemas[renames.get(schema_name, schema_name)] = copy.deepcopy(available[schema_name])
        if renames:
            for item in paths.values():
                _rename_refs(item, renames)
            for schema_name in renames.values():
                _rename_refs(schemas[schema_name], renames)
    paths[OPENAPI_PATH] = {
        "get": {
            "summary": "This document",
            "operationId": "PublicOpenApiDocument",
            "responses": {
                "200": {
                    "description": "The public API as one OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "502": problem_response_object(502),
                "504": problem_response_object(504),
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "facturation public API",
            "version": "1",
            "description": "Errors are application/problem+json (RFC 9457) with the request id.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


class PublicApiDocument:
    """Fetches the services' documents and keeps the composed one for ``ttl`` seconds."""

    def __init__(
        self, upstreams: Mapping[str, Upstream], *, internal_token: str, ttl: float = 60.0
    ) -> None:
        self.upstreams = upstreams
        self.internal_token = internal_token.encode()
        self.ttl = ttl
        self._document: bytes | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def document(self) -> bytes:
        """Raises:
        BadGatewayError | GatewayTimeoutError: a service did not hand over its document.
        """
        async with self._lock:
            if self._document is None or time.monotonic() - self._fetched_at > self.ttl:
                documents = {name: await self._fetch(name) for name in self.upstreams}
                self._document = msgspec.json.encode(compose_public_document(documents))
                self._fetched_at = time.monotonic()
            return self._document

    async def _fetch(self, name: str) -> dict[str, Any]:
        upstream = self.upstreams[name]
        headers = [
            (INTERNAL_TOKEN_HEADER.lower().encode(), self.internal_token),
            (b"x-request-id", (current_request_id() or "").encode()),
        ]
        response = await upstream.send(
            "GET", _UPSTREAM_DOCUMENT, headers, None, content_length=False
        )
        body = await response.read()
        if response.status != 200:
            raise BadGatewayError(f"The {name} service did not hand over its API document.")
        try:
            document: dict[str, Any] = msgspec.json.decode(body, type=dict[str, Any])
        except msgspec.DecodeError:
            raise BadGatewayError(f"The {name} service's API document is not JSON.") from None
        return document
