"""``draft_rubrics SET --judge ID``: an LLM drafts each prompt's rubric (issue 15)."""

from django.core.management.base import BaseCommand, CommandError

from arena.errors import Refusal
from judges.rubric_drafts import draft_rubrics


class Command(BaseCommand):
    help = (
        "Draft a rubric per public prompt of a prompt set with a judge's model (its endpoint "
        "and key variable); drafts are stored as the prompts' own rubrics, edited in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument("prompt_set", help="The prompt set's slug.")
        parser.add_argument("--judge", type=int, required=True, help="Id of the drafting judge.")
        parser.add_argument(
            "--prompt", type=int, action="append", dest="prompt_ids", help="Only this prompt id."
        )
        parser.add_argument(
            "--overwrite", action="store_true", help="Draft again prompts that have a rubric."
        )

    def handle(self, *args, prompt_set, judge, prompt_ids, overwrite, **options):
        try:
            outcome = draft_rubrics(prompt_set, judge, prompt_ids, overwrite=overwrite)
        except Refusal as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"drafted {len(outcome.drafted)}, kept {len(outcome.kept)} (already had one), "
            f"failed {len(outcome.failed)}; cost {outcome.cost:.6f}"
        )
        for prompt_id, reason in sorted(outcome.failed.items()):
            self.stdout.write(f"  prompt {prompt_id}: {reason}")
        if outcome.failed and not outcome.drafted:
            raise CommandError("no rubric drafted")
