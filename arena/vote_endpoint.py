"""The vote endpoint's lean ASGI front: ``POST /api/battles/<id>/vote`` without Django's
request cycle.

Votes are a public arena's hottest request. Through Django's handler each one paid for
the whole middleware stack, URL resolving, django-ninja and a hop into Django's single
thread for sync views: about 13 ms of CPU, which held a 2-core machine under 100
votes/s. This front answers a vote with the same parts of Django that matter for it
(the request object, ``ALLOWED_HOSTS``, the CSRF middleware's check, the signed voter
cookie, the security headers) and the same ``arena.battles.cast_vote`` as the
django-ninja view, on a small thread pool.

It answers only what it fully understands: a JSON body that ``VoteIn`` accepts, from an
anonymous voter with a valid signed cookie, that passes Django's host and CSRF checks.
Anything else (a logged-in user, no or a bad cookie, a failed CSRF check, a malformed
body) goes on to Django unchanged, and the django-ninja view answers it: one reference
behaviour for every refusal.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import uuid
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from ninja.utils import check_csrf
from pydantic import ValidationError

from arena.api import VoteIn
from arena.battles import BattleError, cast_vote
from arena.ratelimit import vote_allowed
from arena.voters import COOKIE, SALT, ip_hash

log = logging.getLogger(__name__)

VOTE_PATH = re.compile(r"/api/battles/([0-9a-fA-F-]{32,36})/vote")
MAX_BODY = 16 * 1024  # a vote is under 200 bytes; anything larger is Django's to refuse


class VoteEndpoint:
    """ASGI middleware: answers plain anonymous votes itself, passes everything else on."""

    def __init__(self, app, threads: int = 8):
        self.app = app
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="arena-vote")
        self._response_middleware = [
            m(lambda request: None) for m in (SecurityMiddleware, XFrameOptionsMiddleware)
        ]

    async def __call__(self, scope, receive, send):
        matched = (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and VOTE_PATH.fullmatch(scope["path"])
        )
        if not matched or _has_session(scope):
            return await self.app(scope, receive, send)
        messages, body = await _read_body(receive)
        if body is not None:
            answer = await asyncio.get_running_loop().run_in_executor(
                self.pool, self.answer, scope, body, matched.group(1)
            )
            if answer is not None:
                return await _send(send, answer)
        await self.app(scope, _replay(messages, receive), send)

    def answer(self, scope, body: bytes, battle_id: str) -> HttpResponse | None:
        """The vote's response, or None to let Django answer the request."""
        request = ASGIRequest(scope, io.BytesIO(body))
        try:
            request.get_host()
        except DisallowedHost:
            return None
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return None
        if check_csrf(request) is not None:
            return None
        voter_label = request.get_signed_cookie(COOKIE, default=None, salt=SALT)
        if voter_label is None:
            return None
        try:
            public_id = uuid.UUID(battle_id)
            payload = VoteIn.model_validate_json(body).model_dump(exclude_unset=True)
        except (ValueError, ValidationError):
            return None
        close_old_connections()
        try:
            if not vote_allowed(voter_label, ip_hash(request)):
                status, data = 429, {"detail": "too many votes; wait a minute"}
            else:
                revealed = cast_vote(voter_label, public_id, payload)
                status, data = 200, {"recorded": True, "battle": str(public_id), "reveal": revealed}
        except BattleError as exc:
            status, data = exc.status, {"detail": exc.message, "field": exc.field}
        except Exception:
            log.exception("vote on battle %s failed", battle_id)
            status, data = 500, {"detail": "the vote could not be stored; try again"}
        finally:
            close_old_connections()
        response = HttpResponse(json.dumps(data), status=status, content_type="application/json")
        for middleware in self._response_middleware:
            response = middleware.process_response(request, response)
        return response


def _has_session(scope) -> bool:
    """A Django session cookie may mean a logged-in user: Django's auth must see it."""
    name = settings.SESSION_COOKIE_NAME.encode()
    return any(key == b"cookie" and name + b"=" in value for key, value in scope.get("headers", ()))


async def _read_body(receive) -> tuple[list, bytes | None]:
    """The request's messages as read, and its body (None when too large or cut off)."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY:
            return messages, None
        if not message.get("more_body"):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list, receive):
    """A receive callable that hands out the messages already read, then the rest."""
    pending = list(messages)

    async def replayed():
        return pending.pop(0) if pending else await receive()

    return replayed


async def _send(send, response: HttpResponse) -> None:
    headers = [(k.encode("latin1"), v.encode("latin1")) for k, v in response.items()]
    headers.append((b"content-length", str(len(response.content)).encode()))
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
