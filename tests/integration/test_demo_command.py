"""`make demo`'s data step: arena_demo loads the real data, fits the boards, and with a fake
LLM server wires the demo's candidates, judges, schedule, first run and audit; twice = once."""

import pytest
from django.core.management import call_command

from arena.models import EvaluationRun, Judge, Judgment, LeaderboardSnapshot, PromptSet
from judges.clients.fake_server import FakeLLMServer

pytestmark = pytest.mark.slow


@pytest.mark.django_db
def test_arena_demo_loads_real_data_and_wires_judging(capsys, django_capture_on_commit_callbacks):
    with FakeLLMServer("demo") as server:
        # The runs' tasks are queued on commit; they are not run here (no worker).
        with django_capture_on_commit_callbacks():
            call_command("arena_demo", "--fake-llm-url", server.base_url)
        first = capsys.readouterr().out
        counts = {
            "judgments": Judgment.objects.count(),
            "runs": EvaluationRun.objects.count(),
            "judges": Judge.objects.count(),
        }
        with django_capture_on_commit_callbacks():
            call_command("arena_demo", "--fake-llm-url", server.base_url)
        again = capsys.readouterr().out

    assert set(PromptSet.objects.values_list("slug", flat=True)) >= {
        "pandalm",
        "chatbot-arena",
        "llmbar-natural",
        "demo",
    }
    board = LeaderboardSnapshot.objects.filter(scope__startswith="set=chatbot-arena|by=humans")
    rows = {row["model"]: row for row in board.latest("id").rows}
    assert rows["mixtral-8x7b-instruct-v0.1"]["rating"] == pytest.approx(1114, abs=1e-6)
    assert rows["chatgpt-4o-latest"]["rank_ub"] == 1
    assert Judge.objects.filter(base_url=server.base_url).count() == 3
    runs = EvaluationRun.objects.order_by("id")
    assert [r.status for r in runs].count(
        "running"
    ) == 7  # first run, audit baseline, 5 perturbations
    assert runs.filter(cron="0 3 * * *").count() == 1
    assert "started evaluation run" in first and "admin / arena-demo" in first
    # Twice = once.
    assert counts == {
        "judgments": Judgment.objects.count(),
        "runs": EvaluationRun.objects.count(),
        "judges": Judge.objects.count(),
    }
    assert "started evaluation run" not in again
    assert " 0 judgments" in again  # every import: nothing stored the second time
