"""A small world for evaluation-run tests: simulated candidates of known strength behind the
fake OpenAI-compatible server, a prompt set, a judge, and helpers to wait for runs.

Imported by tests/integration/test_runs_*.py (and bench/judging_pipeline.py).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from judges.clients.simulation import Faults, JudgeBehaviour, Scenario, SimModel, Style

JUDGE = "judge-good"


def scenario(
    n_models: int = 16, judge_faults: Faults | None = None, latency_ms: float = 0.0
) -> Scenario:
    """``n_models`` candidates with qualities evenly spread over [-2, 2] (cand-00 best), a good judge."""
    qualities = np.linspace(2.0, -2.0, n_models)
    candidates = [
        SimModel(
            f"cand-{i:02d}",
            quality=float(q),
            family=f"family-{i}",
            style=Style(mean_words=40, headers=0.0, lists=0.2, bold=0.1),
        )
        for i, q in enumerate(qualities)
    ]
    judges = [
        SimModel(
            JUDGE,
            family="oracle",
            judge=JudgeBehaviour(discrimination=1.0, noise=0.3, tie=0.1),
            faults=judge_faults,
        ),
        SimModel("judge-down", family="oracle", faults=Faults(rate_500=1.0)),
    ]
    faults = Faults(latency_ms=latency_ms)
    return replace(
        Scenario("runs-test", tuple(candidates + judges), seed=0, answer_noise=0.3), faults=faults
    )


def true_order(n_models: int) -> list[str]:
    return [f"cand-{i:02d}" for i in range(n_models)]


def make_world(
    base_url: str,
    n_models: int = 16,
    n_prompts: int = 20,
    *,
    slug: str = "evals",
    both_orders: bool = False,
    judge_model: str = JUDGE,
    **judge_fields,
):
    """A prompt set, ``n_models`` contestants with endpoints on the fake server, and a judge."""
    from arena.models import Contestant, Judge, Prompt, PromptSet

    prompt_set, _ = PromptSet.objects.get_or_create(slug=slug, defaults={"name": slug})
    Prompt.objects.bulk_create(
        [
            Prompt(
                prompt_set=prompt_set,
                external_id=f"q{i}",
                text=f"Explain how {topic} works and give one practical example (question {i}).",
                category="general" if i % 2 else "science",
            )
            for i, topic in zip(range(n_prompts), _topics(n_prompts), strict=True)
        ],
        ignore_conflicts=True,
    )
    contestants = [
        Contestant.objects.update_or_create(
            name=name,
            defaults={
                "base_url": base_url,
                "api_model": name,
                "family": name,
                "generation_params": {
                    "temperature": 0.0,
                    "max_tokens": 400,
                    "requests_per_minute": 0,  # unlimited: the fake server is local
                },
            },
        )[0]
        for name in true_order(n_models)
    ]
    fields = {
        "base_url": base_url,
        "model": judge_model,
        "both_orders": both_orders,
        "max_retries": 2,
        "timeout_s": 5.0,
        "requests_per_minute": 0,
        "price_per_1k_prompt": 0.001,
        "price_per_1k_completion": 0.002,
        **judge_fields,
    }
    judge = Judge(name=judge_model, **fields)
    judge.save()
    return prompt_set, contestants, judge


def _topics(n: int) -> list[str]:
    words = [
        "photosynthesis",
        "compound interest",
        "public key cryptography",
        "vaccination",
        "plate tectonics",
        "garbage collection",
        "supply and demand",
        "the immune system",
        "neural networks",
        "tidal forces",
        "inflation",
        "version control",
    ]
    return [f"{words[i % len(words)]} ({i})" for i in range(n)]


def wait_until_finished(run, timeout: float = 60.0):
    """Poll until the run is done, failed or cancelled; fail the test with its state otherwise."""
    from arena.models import EvaluationRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in (
            EvaluationRun.Status.DONE,
            EvaluationRun.Status.FAILED,
            EvaluationRun.Status.CANCELLED,
        ):
            return run
        time.sleep(0.1)
    raise AssertionError(
        f"run {run.pk} still {run.status} after {timeout}s: step {run.step!r}, "
        f"{run.calls_made}/{run.planned_calls} calls"
    )


def kendall_tau(ranked: list[str], truth: list[str]) -> float:
    """Kendall's tau between a ranking and the true order (no ties)."""
    from scipy.stats import kendalltau

    position = {name: i for i, name in enumerate(ranked)}
    return float(kendalltau([position[m] for m in truth], range(len(truth))).statistic)


def fast_settings(settings) -> None:
    """Retries and refits on a test's time scale (the worker threads share these settings)."""
    settings.ARENA_JUDGE_RETRY_BASE_DELAY = 0.01
    settings.ARENA_JUDGE_TASK_BACKOFF_SECONDS = 0.05
    settings.ARENA_RUN_REFIT_SECONDS = 1


def judge_requests(server, model: str = JUDGE) -> dict:
    return server.stats()["models"].get(model, {"requests": 0})


async def release_thread_connections() -> None:
    """Give back the database connection of Channels' sync_to_async thread (call in the test's loop)."""
    from channels.db import database_sync_to_async
    from django.db import connections

    await database_sync_to_async(connections.close_all)()


def close_pooled_connections() -> None:
    """Close this process's PostgreSQL pool, so that no idle session outlives the test (the
    test database must be droppable). Killed worker processes' sessions end by themselves:
    the server sees their sockets close. Never terminate other backends: that would also
    break the pooled connections later tests of this process take."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.vendor == "postgresql":
            conn.close()
            conn.close_pool()


class TaskTracker:
    """Counts the Celery tasks published and finished in this process (the embedded worker's
    threads run here), so that a test can wait until the queue has settled instead of
    sleeping and hoping. Use as a context manager; ``names`` limits it to those tasks."""

    def __init__(self, names: tuple[str, ...] | None = None):
        import threading

        self.names = names
        self.published: list[str] = []
        self.finished: list[tuple[str, object]] = []
        self.changed = threading.Condition()

    def __enter__(self):
        from celery.signals import before_task_publish, task_postrun

        before_task_publish.connect(self._on_publish, weak=False)
        task_postrun.connect(self._on_finish, weak=False)
        return self

    def __exit__(self, *exc):
        from celery.signals import before_task_publish, task_postrun

        before_task_publish.disconnect(self._on_publish)
        task_postrun.disconnect(self._on_finish)

    def _wanted(self, name: str) -> bool:
        return self.names is None or name in self.names

    def _on_publish(self, sender=None, **kwargs):
        if self._wanted(sender):
            with self.changed:
                self.published.append(sender)
                self.changed.notify_all()

    def _on_finish(self, sender=None, retval=None, **kwargs):
        if self._wanted(sender.name):
            with self.changed:
                self.finished.append((sender.name, retval))
                self.changed.notify_all()

    def wait(self, predicate, timeout: float = 20.0) -> bool:
        """Block until ``predicate(tracker)`` holds (checked on every publish and finish)."""
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self), timeout)

    def wait_settled(self, timeout: float = 20.0) -> bool:
        """Block until every task published so far has finished (at least one was)."""
        return self.wait(lambda t: 0 < len(t.published) <= len(t.finished), timeout)
