"""One error shape for the whole /api/v1/ surface, and the schema that documents it.

Every refusal is ``{"error": <message for people>, "code": <machine code>}``, plus ``"fields"``
(``{field: [messages]}``) for invalid input and ``"reason"`` where an operation documents one (join).

- :func:`api_exception_handler` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``) turns every DRF/Django
  error into that shape; 401s carry ``WWW-Authenticate`` (TokenAuthentication comes first).
- :func:`api_not_found` is the site's ``handler404``: unknown ``/api/`` URLs (a path parameter that
  is not a number, say) get the JSON shape, every other URL Django's own page.
- :class:`StrictPageNumberPagination`: ``?page=`` must be a positive integer (400 otherwise);
  a page past the last is a documented 404.
- :func:`schema_add_error_responses` (a drf-spectacular postprocessing hook) adds the ``Error``
  component and, to every operation, each error status it can return, so views only declare the
  statuses that are theirs alone (a 409, a permission 403) and the hook fills in the body.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import set_rollback

ERROR_COMPONENT = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every error of the API. `code` is stable and meant for programs; `error` is for people.",
    "properties": {
        "error": {"type": "string", "description": "What went wrong and what to do, in words."},
        "code": {
            "type": "string",
            "description": "Machine-readable code, e.g. `invalid`, `parse_error`, `not_authenticated`, "
            "`authentication_failed`, `permission_denied`, `not_found`, or an operation's own code.",
        },
        "reason": {
            "type": "string",
            "description": "Operations that document a reason (join) repeat it here.",
        },
        "fields": {
            "type": "object",
            "description": "For `code: invalid`: messages per input field (nested fields as `a.b`).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["error", "code"],
}
_STATUS_TEXT = {
    400: "Invalid input or unreadable body (`fields` names the fields)",
    401: "Not signed in, or the token is unknown (`WWW-Authenticate: Token`)",
    403: "Signed in but not allowed (for session cookies: also a missing CSRF token)",
    404: "No such object, or a page past the last",
    406: "The Accept header asks for a format other than JSON",
    415: "The body is not JSON",
}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """``{"a": {"b": ["m"]}}`` → ``{"a.b": ["m"]}``; list items of nested lists keep their index."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or "non_field_errors": [str(m) for m in messages]} if messages else {}


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    """The JSON body for ``exc``: ``{"error", "code"}`` plus ``"fields"`` for field errors."""
    detail = exc.detail
    if isinstance(detail, list) and len(detail) == 1 and not isinstance(detail[0], dict | list):
        detail = detail[0]  # ValidationError("message", code="x") → a plain error with code x
    if isinstance(detail, dict | list):
        fields = _flatten(detail)
        summary = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in fields.items())
        return {"error": f"Invalid input. {summary}", "code": "invalid", "fields": fields}
    return {"error": str(detail), "code": getattr(detail, "code", None) or exc.default_code}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error as ``{"error", "code", ...}``; None (→ 500) for bugs."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    return Response(error_body(exc), status=exc.status_code, headers=headers)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: the API's error shape under /api/, Django's 404 page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "No such API endpoint or object.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


class StrictPageNumberPagination(PageNumberPagination):
    """Page-number pagination whose ``page`` is a positive integer: anything else is a 400, not a 404."""

    last_page_strings = ()
    _PAGE = re.compile(r"^[0-9]+$")

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param, "1")
        if not self._PAGE.match(raw) or int(raw) < 1:
            raise exceptions.ValidationError(
                {self.page_query_param: ["A page number is an integer from 1 up."]}
            )
        return raw

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == self.page_query_param:
                param["schema"] = {"type": "integer", "minimum": 1}
                param["description"] = "A page number from 1; a page past the last is a 404."
        return params


# --- schema ---------------------------------------------------------------------------------------

_UNSAFE = {"post", "put", "patch", "delete"}


def _security_names(operation: dict) -> set[str]:
    return {name for requirement in operation.get("security", []) for name in requirement}


def _statuses_for(path: str, method: str, operation: dict) -> set[int]:
    """The error statuses any operation of this shape can return, whatever its view does."""
    statuses = {406}
    params = operation.get("parameters", [])
    if operation.get("requestBody") or any(p["in"] == "query" for p in params):
        statuses.add(400)
    if operation.get("requestBody"):
        statuses.add(415)
    security = _security_names(operation)
    if "tokenAuth" in security:
        statuses.add(401)
    if "cookieAuth" in security and method in _UNSAFE:
        statuses.add(403)  # CSRF
    if "{" in path or any(p["name"] == "page" for p in params):
        statuses.add(404)
    return statuses


def _int_path_params(operation: dict) -> None:
    """Ids are 64-bit: say so, so clients (and schemathesis) do not send what no row can have."""
    for param in operation.get("parameters", []):
        schema = param.get("schema", {})
        if param["in"] == "path" and schema.get("type") == "integer":
            schema.setdefault("minimum", 0)
            schema.setdefault("maximum", 2**63 - 1)


def schema_add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular POSTPROCESSING_HOOK: the ``Error`` component and every operation's error statuses.

    Responses a view declared with a body keep it (join documents its own ``JoinRefusal``); 4xx
    responses declared with a description only get the ``Error`` body; missing statuses are added.
    401s document the ``WWW-Authenticate`` header.
    """
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            _int_path_params(operation)
            responses = operation.setdefault("responses", {})
            for status in _statuses_for(path, method, operation):
                responses.setdefault(str(status), {"description": _STATUS_TEXT[status]})
            for status, response in responses.items():
                if not status.startswith("4"):
                    continue
                response.setdefault("content", {"application/json": {"schema": ERROR_REF}})
                if not response.get("description"):
                    response["description"] = _STATUS_TEXT.get(int(status), "")
                if status == "401":
                    response.setdefault("headers", {})["WWW-Authenticate"] = {
                        "schema": {"type": "string"},
                        "required": True,
                        "description": "`Token`: send `Authorization: Token <token>`.",
                    }
    return result
