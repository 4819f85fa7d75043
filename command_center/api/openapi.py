"""The OpenAPI 3 document of the API, generated from the parameter table (params.ENDPOINTS)."""

from __future__ import annotations

from typing import Any

from command_center.api.params import ENDPOINTS, Param, ParamKind

API_PREFIX = "/api/admin/observability/"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "detail": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "parameter name → what is wrong with it",
        },
    },
}


def _schema(param: Param) -> dict[str, Any]:
    if param.kind == ParamKind.ENUM:
        schema: dict[str, Any] = {"type": "string", "enum": list(param.choices)}
    elif param.kind == ParamKind.INT:
        schema = {"type": "integer", "minimum": param.minimum, "maximum": param.maximum}
    elif param.kind == ParamKind.DATETIME:
        schema = {"type": "string", "format": "date-time"}
    elif param.kind == ParamKind.TRACE_ID:
        schema = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
    elif param.kind == ParamKind.GROUP:
        schema = {"type": "string", "pattern": "^[0-9a-f]{16}$"}
    else:
        schema = {"type": "string", "maxLength": param.max_length}
    if param.default is not None:
        schema["default"] = param.default
    return {key: value for key, value in schema.items() if value is not None}


def _parameter(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "in": "query",
        "required": param.required,
        "description": param.description,
        "schema": _schema(param),
    }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document() -> dict[str, Any]:
    paths = {}
    for endpoint in ENDPOINTS.values():
        paths[API_PREFIX + endpoint.path] = {
            "get": {
                "operationId": endpoint.name.replace("-", "_"),
                "summary": endpoint.summary,
                "description": "Response shapes: docs/api.md.",
                "parameters": [_parameter(param) for param in endpoint.params],
                "responses": {
                    "200": {"description": "OK", "content": {media: {} for media in endpoint.media_types}},
                    "400": _error("Invalid parameters"),
                    "401": _error("Not logged in"),
                    "403": _error("Not a system admin"),
                },
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "kaiku_ops admin observability API",
            "version": "1",
            "description": "Read-only Command Center data; session authentication, system admins only.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "sessionid"}},
        },
        "security": [{"session": []}],
    }
