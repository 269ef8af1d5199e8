from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from judges.models import ApiToken
from judges.tokens import create_token, revoke_token


class Command(BaseCommand):
    help = "Create, list or revoke bearer tokens for the runs API (/api/runs)."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a token and print it (shown once).")
        create.add_argument("name")
        create.add_argument("--user", help="Username the token acts for (optional).")
        actions.add_parser("list", help="List tokens (names and prefixes, never the tokens).")
        revoke = actions.add_parser("revoke", help="Deactivate a token.")
        revoke.add_argument("name")

    def handle(self, *args, action, **options):
        if action == "create":
            user = None
            if options.get("user"):
                user = get_user_model().objects.filter(username=options["user"]).first()
                if user is None:
                    raise CommandError(f"no user {options['user']!r}")
            try:
                token, raw = create_token(options["name"], user)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stderr.write(f"token {token.name!r} created; it is shown only once:")
            self.stdout.write(raw)
        elif action == "list":
            for token in ApiToken.objects.order_by("name"):
                state = "active" if token.is_active else "revoked"
                used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
                self.stdout.write(f"{token.name}\t{token.prefix}…\t{state}\tlast used {used}")
        elif not revoke_token(options["name"]):
            raise CommandError(f"no active token {options['name']!r}")
        else:
            self.stdout.write(f"revoked {options['name']!r}")
