"""Data for the browser tests: a public arena whose 4 contestants answered every prompt."""

import os

from django.contrib.auth.models import User

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, OutputRecord, PromptRecord
from arena.models import Contestant, PromptSet
from arena.services import refresh_prompt_set
from judges.runs.create import create_run

CONTESTANTS = ["owl-7b", "lark-13b", "wren-70b", "kite-8x7b"]
LIVE_CONTESTANTS = ["alpha", "beta", "gamma"]  # models of the fake server's "test" scenario
STAFF_USER, STAFF_PASSWORD = "e2e-staff", "e2e-staff-password-not-secret"
PROMPTS = {
    "p1": "Name three prime numbers.",
    "p2": "Write a haiku about rain.",
    "p3": "What is the capital of Australia?",
    "p4": "Explain recursion to a child.",
    "p5": "Give one tip for better sleep.",
    "p6": "Translate 'good morning' into French.",
}


def seed():
    records = []
    for pid, text in PROMPTS.items():
        records.append(PromptRecord(external_id=pid, text=text, category="general"))
        for i, name in enumerate(CONTESTANTS):
            records.append(
                OutputRecord(
                    prompt_id=pid,
                    contestant=name,
                    text=f"Answer {i + 1} to: {text}\n\nThis answer is written in style number {i + 1}.",
                )
            )
    for i in range(12):
        a, b = CONTESTANTS[i % 4], CONTESTANTS[(i + 1) % 4]
        records.append(
            JudgmentRecord(
                match_id=f"seed-{i}",
                contestants=(a, b),
                winner="a" if i % 3 else "b",
                voter=f"seed-voter-{i}",
                prompt_id=f"p{1 + i % 6}",
            )
        )
    import_records(records, prompt_set="e2e-arena", source="seed")
    PromptSet.objects.filter(slug="e2e-arena").update(name="E2E arena", is_public_arena=True)
    # Fitted like arena_demo's sets: a read never fits a board (it asks the worker to).
    refresh_prompt_set(PromptSet.objects.get(slug="e2e-arena"), bootstrap=50)
    seed_audit()
    # Contestants that answer typed prompts live, through a fake OpenAI-compatible server.
    if url := os.environ.get("ARENA_E2E_LLM_URL"):
        for name in LIVE_CONTESTANTS:
            Contestant.objects.create(
                name=name, base_url=url, api_model=name, generation_params={"max_tokens": 120}
            )


def seed_audit():
    """A staff user, and a prompt set with LLM-judge verdicts (each match in both orders)
    and human votes on the same matches: every judge-audit page has charts to draw."""
    User.objects.create_user(STAFF_USER, password=STAFF_PASSWORD, is_staff=True)
    records = []
    quality = {name: -i for i, name in enumerate(CONTESTANTS)}  # owl-7b best
    for k in range(8):
        pid = f"audit-{k}"
        records.append(
            PromptRecord(external_id=pid, text=f"Audit question {k}", category="general")
        )
        for name in CONTESTANTS:
            records.append(OutputRecord(prompt_id=pid, contestant=name, text=f"{name} on {k}"))
        for step in (1, 2):
            a, b = CONTESTANTS[k % 4], CONTESTANTS[(k + step) % 4]
            better = "a" if quality[a] > quality[b] else "b"
            match = {"match_id": f"audit-{k}-{step}", "contestants": (a, b), "prompt_id": pid}
            for presentation in ((0, 1), (1, 0)):
                # judge-first always picks the answer it was shown first; judge-fair, the better.
                first = "a" if presentation == (0, 1) else "b"
                records.append(
                    JudgmentRecord(
                        **match, winner=first, judge="judge-first", presentation=presentation
                    )
                )
                records.append(
                    JudgmentRecord(
                        **match, winner=better, judge="judge-fair", presentation=presentation
                    )
                )
            for voter in ("audit-voter-1", "audit-voter-2"):
                winner = better if voter.endswith("1") or k % 3 else "tie"
                records.append(JudgmentRecord(**match, winner=winner, voter=voter))
    import_records(records, prompt_set="e2e-audit", source="seed")
    PromptSet.objects.filter(slug="e2e-audit").update(name="E2E judge audit")
    # A run page to look at (pending: never started, so no judge is called).
    create_run(prompt_set="e2e-audit", judge="judge-fair", contestants=CONTESTANTS[:3])


if __name__ == "__main__":
    seed()
