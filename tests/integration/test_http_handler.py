"""config.http: Django's ASGI handler with each request's sync part run in one pass.

The handler is driven as an ASGI server drives it (scope, receive, send on an event loop
of a plain thread, as under uvicorn), against views defined here.
"""

import asyncio
import threading

import pytest
from django.core import signals
from django.http import HttpResponse, StreamingHttpResponse
from django.test import override_settings
from django.urls import path

from config.http import OnePassASGIHandler

seen: dict[str, list] = {}


def plain(request):
    seen["view"].append(threading.get_ident())
    return HttpResponse("plain")


def failing(request):
    raise RuntimeError("a bug in a view")


def streamed(request):
    return StreamingHttpResponse(iter([b"one ", b"two"]))


async def endless(request):
    async def events():
        try:
            while True:
                yield b"tick\n"
                await asyncio.sleep(0.01)
        finally:
            seen["stream closed"].append(True)

    return StreamingHttpResponse(events())


async def async_view(request):
    return HttpResponse("async")


urlpatterns = [
    path("plain", plain),
    path("failing", failing),
    path("streamed", streamed),
    path("endless", endless),
    path("async", async_view),
]


@pytest.fixture(autouse=True)
def _routes():
    seen.clear()
    seen.update({"view": [], "started": [], "finished": [], "stream closed": []})

    def started(**kwargs):
        seen["started"].append(threading.get_ident())

    def finished(**kwargs):
        seen["finished"].append(threading.get_ident())

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    with override_settings(ROOT_URLCONF=__name__, DEBUG_PROPAGATE_EXCEPTIONS=False):
        yield
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


def serve(path_, disconnect_after_first_chunk=False):
    """Run one GET through a fresh handler on an event loop of its own thread."""
    handler = OnePassASGIHandler()
    sent = []
    result = {}

    async def run():
        result["loop thread"] = threading.get_ident()
        body_read = asyncio.Event()
        first_chunk = asyncio.Event()

        async def receive():
            if not body_read.is_set():
                body_read.set()
                return {"type": "http.request", "body": b"", "more_body": False}
            if disconnect_after_first_chunk:
                await first_chunk.wait()
                return {"type": "http.disconnect"}
            await asyncio.Event().wait()

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and message.get("body"):
                first_chunk.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/" + path_,
            "raw_path": ("/" + path_).encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        await asyncio.wait_for(handler(scope, receive, send), 10)

    server = threading.Thread(target=lambda: asyncio.run(run()))
    server.start()
    server.join(15)
    assert not server.is_alive(), "the handler did not return"
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, result["loop thread"]


def test_a_request_runs_start_view_and_finish_on_one_thread_off_the_event_loop():
    status, body, loop_thread = serve("plain")
    assert (status, body) == (200, b"plain")
    # request_finished closes the thread's database connections (Django's own receiver):
    # it must run where the view used them, or the pool never gets them back.
    assert seen["started"] == seen["view"] == seen["finished"]
    assert seen["view"][0] != loop_thread


def test_a_failing_view_is_a_500_and_the_request_still_finishes():
    status, body, _ = serve("failing")
    assert status == 500
    assert seen["finished"]


def test_an_async_view_runs_through_djangos_adapter():
    assert serve("async")[:2] == (200, b"async")


# A file response (static files, plotly.js) streams a sync iterator: Django warns, and maps it.
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous")
def test_a_streaming_response_is_sent_whole_then_closed():
    status, body, _ = serve("streamed")
    assert (status, body) == (200, b"one two")
    assert len(seen["finished"]) == 1


def test_a_client_that_goes_away_stops_an_endless_stream():
    status, body, _ = serve("endless", disconnect_after_first_chunk=True)
    assert status == 200 and body.startswith(b"tick")
    assert seen["stream closed"] == [True]
    assert len(seen["finished"]) == 1
