"""Serve the whole site from one command: HTTP and websockets, and in embedded mode the
Celery worker and beat in threads of this process (process wiring, not domain code)."""

import uvicorn
from daphne.server import Server
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.celery import app
from config.embedded import start_beat, start_worker
from judges.clients.fake_server import FakeLLMServer
from judges.runs import resume_interrupted_runs


class Command(BaseCommand):
    help = (
        "Serve the site (HTTP + websockets). Embedded mode also runs the Celery worker and beat in "
        "this process; with REDIS_URL, --workers N serves from N processes (uvicorn)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers", type=int, default=1, help="Web processes (needs REDIS_URL when > 1)."
        )
        parser.add_argument(
            "--worker-concurrency",
            type=int,
            default=4,
            help="Threads of the embedded Celery worker.",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="Do not start the embedded Celery worker and beat.",
        )
        parser.add_argument(
            "--fake-llm-port",
            type=int,
            default=None,
            help="Also serve the fake OpenAI-compatible server (demo scenario) on 127.0.0.1:PORT "
            "(the demo's candidates and judges).",
        )
        parser.add_argument(
            "--no-collectstatic",
            action="store_true",
            help="Do not collect the static files into STATIC_ROOT first (they were collected "
            "when the image was built).",
        )

    def handle(
        self,
        *args,
        host,
        port,
        workers,
        worker_concurrency,
        no_worker,
        fake_llm_port,
        no_collectstatic,
        **options,
    ):
        if not no_collectstatic:
            # The pages name static files by their content-hashed, compressed copies
            # (STORAGES in settings): collect them before the first page is served.
            call_command("collectstatic", interactive=False, verbosity=0)
        fake_llm = self._start_fake_llm(fake_llm_port) if fake_llm_port is not None else None
        try:
            if workers > 1:
                self._serve_processes(host, port, workers)
            else:
                self._serve(host, port, worker_concurrency, no_worker)
        finally:
            if fake_llm is not None:
                fake_llm.close()

    def _start_fake_llm(self, port):
        try:
            server = FakeLLMServer("demo", port=port).start()
        except OSError as exc:
            raise CommandError(f"fake LLM server on 127.0.0.1:{port}: {exc}") from exc
        self.stdout.write(f"fake OpenAI-compatible server (demo models) at {server.base_url}")
        return server

    def _serve(self, host, port, worker_concurrency, no_worker):
        worker = beat = None
        if settings.ARENA_EMBEDDED_WORKER and not no_worker:
            worker = start_worker(app, concurrency=worker_concurrency)
            beat = start_beat(app)
            # The in-memory broker lost whatever was queued when the last server stopped
            # (or by another command, such as arena_demo): hand running runs out again.
            resumed = resume_interrupted_runs()
            if resumed:
                self.stdout.write(f"resumed evaluation runs {resumed}")
        self.stdout.write(f"Arena at http://{host}:{port}/  (admin: http://{host}:{port}/admin/)")
        # Imported here, after collectstatic: loading the middleware makes WhiteNoise list
        # the collected files once, and a file collected later would not be served.
        from config.asgi import application

        try:
            Server(
                application=application,
                endpoints=[f"tcp:port={port}:interface={host}"],
                signal_handlers=True,
                verbosity=1,
            ).run()
        finally:
            if beat is not None:
                beat.stop()
            if worker is not None:
                worker.stop(in_sighandler=False)

    def _serve_processes(self, host, port, workers):
        # Several processes share nothing in memory: the broker and the channel layer must be Redis.
        if not settings.REDIS_URL:
            raise CommandError(
                "--workers > 1 needs REDIS_URL (Celery broker and Channels layer shared by the processes)"
            )
        self.stdout.write(
            f"Arena at http://{host}:{port}/ with {workers} web processes; run Celery workers and beat separately"
        )
        uvicorn.run(
            "config.asgi:application",
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            lifespan="off",
        )
