from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError

from judges.clients import fake_server


class Command(BaseCommand):
    help = (
        "Run the fake OpenAI-compatible server (simulated candidate models and judges with "
        "known biases and faults) on 127.0.0.1 until interrupted."
    )

    def add_arguments(self, parser):
        fake_server.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            fake_server.run(SimpleNamespace(**options), out=self.stdout)
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from error
