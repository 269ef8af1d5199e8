"""`make demo`'s data step: the real public datasets, their boards, and the demo's judging."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from arena.importers.loader import import_file
from arena.models import PromptSet
from arena.services import refresh_prompt_set
from judges.demo import ensure_demo_judging, start_demo_runs

DATA = Path(settings.BASE_DIR) / "arena" / "fixtures" / "datasets"


class Command(BaseCommand):
    help = "Load the real demo data (PandaLM, Chatbot Arena counts, LLMBar) and fit their leaderboards. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-admin", action="store_true", help="Do not create the demo staff account."
        )
        parser.add_argument(
            "--fake-llm-url",
            default="",
            help="Base URL of the fake OpenAI-compatible server (arena_serve --fake-llm-port): "
            "adds its candidates and judges, a schedule, a first evaluation run and a "
            "perturbation audit (started when the server runs).",
        )

    def handle(self, *args, no_admin, fake_llm_url, **options):
        imports = [
            (
                "pandalm",
                DATA / "pandalm" / "testset-v1.json",
                "pandalm",
                {
                    "judges": [
                        str(DATA / "pandalm" / "gpt-3.5-turbo-testset-v1.json"),
                        str(DATA / "pandalm" / "pandalm-7b-testset-v1.json"),
                    ]
                },
            ),
            (
                "counts",
                DATA / "chatbot_arena" / "chatbotarena_20240814_agg.json",
                "chatbot-arena",
                {},
            ),
            ("llmbar", DATA / "llmbar" / "Natural", "llmbar-natural", {}),
        ]
        for fmt, path, slug, options in imports:
            report = import_file(fmt, path, prompt_set=slug, **options)
            if not report.ok:
                raise CommandError(report.summary())
            self.stdout.write(report.summary())
        names = {
            "pandalm": (
                "PandaLM test set (5 open 7B models, 3 human annotators)",
                "WeOpenML/PandaLM @ 3871806, data/testset-v1.json",
                "Apache-2.0",
                True,
            ),
            "chatbot-arena": (
                "Chatbot Arena 2024-08-14 (1.67M anonymous battles, counts)",
                "suquark/leaderbot @ b9a8e16 (from LMSYS clean_battle_20240814_public)",
                "BSD-3-Clause",
                False,
            ),
            "llmbar-natural": (
                "LLMBar Natural (gold pairs, 5 judges in both orders)",
                "princeton-nlp/LLMBar @ 900616b, Dataset/LLMBar/Natural",
                "MIT",
                False,
            ),
        }
        for slug, (name, source, license, public) in names.items():
            PromptSet.objects.filter(slug=slug).update(
                name=name, source=source, license=license, is_public_arena=public
            )
        # As published: the Chatbot Arena board pins Mixtral-8x7B at 1114.
        PromptSet.objects.filter(slug="chatbot-arena").update(
            rating_anchor="mixtral-8x7b-instruct-v0.1=1114"
        )
        for prompt_set in PromptSet.objects.filter(slug__in=names):
            for snapshot in refresh_prompt_set(prompt_set):
                self.stdout.write(
                    f"leaderboard {snapshot.scope}: {snapshot.n_models} models, {snapshot.n_votes} votes, fitted in {snapshot.fit_seconds:.2f} s"
                )
        if fake_llm_url:
            self._demo_judging(fake_llm_url)
        if not no_admin:
            self._demo_admin()

    def _demo_judging(self, base_url):
        made = ensure_demo_judging(base_url)
        self.stdout.write(
            f"demo judging: {len(made['contestants'])} candidates and {len(made['judges'])} judges "
            f"at {base_url}, prompt set {made['prompt_set']!r}, nightly schedule"
        )
        for run in start_demo_runs():
            self.stdout.write(f"started evaluation run {run.pk}: {run.name}")

    def _demo_admin(self):
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        User.objects.create_superuser("admin", "admin@localhost", "arena-demo")
        self.stdout.write(
            "created the demo staff account admin / arena-demo (change it: python manage.py changepassword admin)"
        )
