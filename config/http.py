"""Django's ASGI handler, running each request's sync part in one pass on a pooled thread.

Every middleware of the site is a sync one (MiddlewareMixin) and so is every view but
the live-answer stream. Django's own ``ASGIHandler`` loads the middleware in async mode
and crosses between the event loop and a thread made for each request at every seam:
the request_started signal, into the middleware, back out to resolve the URL, into the
view, back, and the response's close. On two cores those crossings and the thread made
per request cost a third of a vote's time in the web process.

``OnePassASGIHandler`` changes only that scheduling. It loads the same middleware in
sync mode and runs what a WSGI server would run — request_started, the middleware, the
URL resolving, the view and, for a response held in memory, its close (request_finished,
which gives the database connection back to the pool) — in one call on a thread of the
event loop's pool, so one process has many requests in flight. Reading the body,
sending the response, and a streaming response (with Django's disconnect handling) stay
on the event loop, as in Django's handler. An async view still works: Django's handler
runs it on the event loop through its sync adapter. Nothing else differs from Django.
"""

from __future__ import annotations

import asyncio

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import set_script_prefix


class OnePassASGIHandler(ASGIHandler):
    def __init__(self):
        BaseHandler.__init__(self)  # not ASGIHandler.__init__: it loads the middleware async
        self.load_middleware(is_async=False)

    async def handle(self, scope, receive, send):
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self.respond, thread_sensitive=False)(scope, body_file)
            if response.streaming:
                await self.stream(response, receive, send)
            else:
                await self.send_response(response, send)
        finally:
            body_file.close()

    def respond(self, scope, body_file):
        """The request's sync part, on one thread (as under WSGI)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the ASGI server chunks
        if not response.streaming:
            response.close()  # request_finished, on the thread that used the connection
        return response

    async def stream(self, response, receive, send):
        """Send a streaming response; stop it if the client goes away (as Django does)."""
        sending = asyncio.create_task(self.send_response(response, send))
        listening = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
            for task in (listening, sending):
                if not task.done():
                    task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, RequestAborted):
                    pass
        finally:
            await sync_to_async(response.close, thread_sensitive=False)()
