from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the site (HTTP + websockets). In embedded mode also runs the Celery worker and beat in this process."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--worker-concurrency", type=int, default=4)
        parser.add_argument(
            "--no-worker", action="store_true", help="Do not start the embedded worker and beat."
        )

    def handle(self, *args, host, port, worker_concurrency, no_worker, **options):
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
