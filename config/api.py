"""The one JSON API object: both apps' routers, how bodies are read, and how errors answer.

config/urls.py mounts it at /api/ (OpenAPI at /api/docs, /api/openapi.json). The apps only
define routers: arena's at the root, judges' runs API at /runs, the annotation
campaigns' at /campaigns.

Every error answers in one shape, ``{"detail": message, "field": field}``
(:class:`arena.schemas.Problem`): a domain refusal (:class:`arena.errors.Refusal`) with
its status and, for 429, a ``Retry-After`` header; a body that is not a JSON object of
valid text with 400 (:class:`JsonObjectParser`); a value of the wrong type or a missing
one with 422 (the first error in ``detail``/``field``, all of them in ``errors``).
"""

import json
import re

from django.db import InterfaceError, OperationalError
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from arena.api import router as arena_router
from arena.errors import SERVICE_DOWN, Refusal
from judges.api import router as runs_router
from judges.campaign_api import router as campaigns_router

# Text no endpoint can store: NUL (PostgreSQL refuses it) and lone UTF-16 surrogates
# (JSON's "\ud800" decodes to one; it has no UTF-8 encoding).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class JsonObjectParser(Parser):
    """Request bodies are JSON objects of valid Unicode text, for every endpoint.

    Anything else is refused before a view runs, with a message that says what is wrong:
    malformed JSON, a body that is not an object (an array, a string, a number, null),
    a NUL character or a lone surrogate in any key or string (``field`` names where).
    """

    def parse_body(self, request):
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise Refusal(f"malformed JSON: {exc}", field="body") from None
        if not isinstance(data, dict):
            raise Refusal(f"expected a JSON object, got {_json_type(data)}", field="body") from None
        _check_text(data)
        return data


def _json_type(value) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _check_text(data: dict) -> None:
    """Refuse a NUL or a lone surrogate anywhere in the body (keys too), naming the field."""
    stack: list[tuple[str, object]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else key
                if _UNSTORABLE.search(key):
                    _refuse_text(path or "body", key)
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str) and _UNSTORABLE.search(value):
            _refuse_text(path, value)


def _refuse_text(field: str, text: str) -> None:
    bad = _UNSTORABLE.search(text).group()
    what = "a NUL character" if bad == "\x00" else f"a lone surrogate (\\u{ord(bad):04x})"
    raise Refusal(f"{what} is not valid text", field=field)


api = NinjaAPI(title="Arena API", version="1", urls_namespace="api", parser=JsonObjectParser())


@api.exception_handler(Refusal)
def refusal(request, exc: Refusal):
    """Every refusal of the domain, whichever endpoint: ``{"detail", "field"}``, its status."""
    response = api.create_response(
        request, {"detail": exc.message, "field": exc.field}, status=exc.status
    )
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


RETRY_AFTER_OUTAGE = 2  # seconds: what a 503 during an outage asks the client to wait


def unavailable(request, exc: Exception):
    """PostgreSQL or Redis unreachable (a dropped connection, a restart): a 503 that says
    which and when to try again, instead of a 500. A vote refused so wrote nothing, or
    was committed just before: sent again with its idempotency key it is stored once."""
    service = "the database" if isinstance(exc, OperationalError | InterfaceError) else "Redis"
    response = api.create_response(
        request,
        {"detail": f"{service} is unavailable for a moment; retry", "field": None},
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_OUTAGE)
    return response


for _error in (OperationalError, InterfaceError, *SERVICE_DOWN):
    api.add_exception_handler(_error, unavailable)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    """ninja's own errors (401, a body the parser refused) in the same shape."""
    if isinstance(exc.__cause__, Refusal):  # raised by JsonObjectParser, wrapped by ninja
        return refusal(request, exc.__cause__)
    return api.create_response(request, {"detail": str(exc), "field": None}, status=exc.status_code)


@api.exception_handler(ValidationError)
def invalid(request, exc: ValidationError):
    """A value of the wrong type, a missing or an unknown one: 422, the first one named."""
    errors = [
        {"field": _field(error.get("loc", ())), "message": str(error.get("msg", "invalid"))}
        for error in exc.errors
    ]
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return api.create_response(
        request, {"detail": detail, "field": first["field"], "errors": errors}, status=422
    )


def _field(loc) -> str | None:
    """("body", "payload", "k") -> "k"; ("query", "set") -> "set"."""
    parts = [str(part) for part in loc]
    parts = parts[2:] if parts[:1] == ["body"] else parts[1:]
    return ".".join(parts) or None


api.add_router("", arena_router)
api.add_router("/runs", runs_router)
api.add_router("/campaigns", campaigns_router)
