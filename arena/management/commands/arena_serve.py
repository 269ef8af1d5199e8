from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


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

    def handle(self, *args, host, port, workers, worker_concurrency, no_worker, **options):
        if workers > 1:
            self._serve_processes(host, port, workers)
            return
        from daphne.server import Server

        from config.asgi import application
        from config.celery import app

        worker = beat = None
        if settings.ARENA_EMBEDDED_WORKER and not no_worker:
            from arena.embedded import start_beat, start_worker

            worker = start_worker(app, concurrency=worker_concurrency)
            beat = start_beat(app)
        self.stdout.write(f"Arena at http://{host}:{port}/  (admin: http://{host}:{port}/admin/)")
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
        import uvicorn

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
