"""Run use cases: validation, replay and resume, never paying twice, schedules, the watchdog."""

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from arena import services
from arena.boards import BoardScope
from arena.errors import Refusal
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import (
    BoardState,
    Contestant,
    EvaluationRun,
    Judgment,
    LeaderboardSnapshot,
    Match,
    Output,
)
from arena.services import refresh_leaderboard
from judges import runs, schedules
from judges.clients.fake_server import FakeLLMServer
from judges.judging import run_scope
from tests.integration.runs_world import (
    TaskTracker,
    fast_settings,
    judge_requests,
    make_world,
    scenario,
    wait_until_finished,
)

NOWHERE = "http://127.0.0.1:9/v1"


@pytest.fixture
def server():
    with FakeLLMServer(scenario(6)) as srv:
        yield srv


# --- validation (no worker) ---------------------------------------------------------------


def test_start_freezes_contestants_prompts_and_the_plan(db, django_capture_on_commit_callbacks):
    prompt_set, contestants, judge = make_world(NOWHERE, n_models=5, n_prompts=9)
    run = runs.create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, max_prompts=4, seed=7
    )
    with django_capture_on_commit_callbacks():
        runs.start_run(run)
    run.refresh_from_db()
    assert run.status == "running" and len(run.prompt_ids) == 4
    assert run.prompt_ids == sorted(run.prompt_ids)
    assert run.contestant_ids == sorted(c.id for c in contestants)
    assert run.planned_calls == 10 * 4
    assert PeriodicTask.objects.filter(name=runs.WATCHDOG, task="judges.tasks.watch_runs").exists()
    with pytest.raises(Refusal, match="not pending"):
        runs.start_run(run)
    # The same seed samples the same prompts.
    twin = runs.create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, max_prompts=4, seed=7
    )
    with django_capture_on_commit_callbacks():
        runs.start_run(twin)
    twin.refresh_from_db()
    assert twin.prompt_ids == run.prompt_ids


def test_contestants_without_endpoint_use_stored_answers_and_restrict_the_prompts(
    db, django_capture_on_commit_callbacks
):
    prompt_set, contestants, judge = make_world(NOWHERE, n_models=3, n_prompts=5)
    offline = Contestant.objects.create(name="imported-model")
    prompts = list(prompt_set.prompts.order_by("id"))
    for prompt in prompts[:2]:
        Output.objects.create(prompt=prompt, contestant=offline, text="a stored answer")
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=[*contestants, offline])
    with django_capture_on_commit_callbacks():
        runs.start_run(run)
    run.refresh_from_db()
    assert run.prompt_ids == [p.id for p in prompts[:2]]

    lonely = Contestant.objects.create(name="no-answers")
    bad = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=[contestants[0], lonely])
    with pytest.raises(Refusal, match="'no-answers' has no endpoint and no stored answer"):
        runs.start_run(bad)


def test_only_pairwise_and_single_score_judges_run_designs(db):
    prompt_set, contestants, judge = make_world(NOWHERE, n_models=3, n_prompts=2)
    judge.mode = "listwise"  # single-score judges run (tests/integration/test_runs_single_score.py)
    judge.save()
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    with pytest.raises(Refusal) as caught:
        runs.start_run(run)
    assert caught.value.field == "judge" and "pairwise" in caught.value.message


# --- end to end (a real worker) ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_identical_run_reuses_every_verdict_and_pays_nothing(settings, server, celery_worker):
    fast_settings(settings)
    prompt_set, contestants, judge = make_world(server.base_url, n_models=4, n_prompts=3)
    first = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants, seed=1)
    runs.start_run(first)
    first = wait_until_finished(first)
    paid = judge_requests(server)["requests"]
    assert first.status == "done" and paid == first.planned_calls and first.cost > 0

    second = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants, seed=1)
    runs.start_run(second)
    second = wait_until_finished(second)
    assert second.status == "done"
    assert judge_requests(server)["requests"] == paid  # not one more call
    assert second.calls_cached == second.calls_made == second.planned_calls
    assert second.cost == 0
    copies = Judgment.objects.filter(match__run=second)
    originals = dict(Judgment.objects.filter(match__run=first).values_list("content_key", "winner"))
    assert all(originals[j.content_key] == j.winner for j in copies)


@pytest.mark.django_db(transaction=True)
def test_a_resumed_run_replays_its_design_and_finishes_without_duplicates(
    settings, server, celery_worker
):
    """Swiss: each round depends on the last. Lose part of a round, resume: same rounds, no duplicate."""
    fast_settings(settings)
    prompt_set, contestants, judge = make_world(server.base_url, n_models=6, n_prompts=6)
    params = {"rounds": 4, "prompts_per_round": 1}
    run = runs.create_run(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        design="swiss",
        design_params=params,
        seed=5,
    )
    runs.start_run(run)
    run = wait_until_finished(run)
    assert run.status == "done", run.error
    rounds = sorted(set(Match.objects.filter(run=run).values_list("round", flat=True)))
    assert rounds == [0, 1, 2, 3]
    before = set(Match.objects.filter(run=run).values_list("id", "external_id"))
    verdicts = dict(
        Judgment.objects.filter(match__run=run).values_list("match__external_id", "winner")
    )

    # A crash in round 2: its verdicts and everything after are lost; the run stopped.
    lost = Judgment.objects.filter(match__run=run, match__round__gte=2)
    n_lost = lost.count()
    lost.delete()
    Match.objects.filter(run=run, round=3).delete()
    EvaluationRun.objects.filter(pk=run.pk).update(
        status="failed", calls_made=run.calls_made - n_lost, step="2:judge"
    )
    run.refresh_from_db()
    runs.resume_run(run)
    run = wait_until_finished(run)
    assert run.status == "done", run.error
    after = set(Match.objects.filter(run=run).values_list("id", "external_id"))
    assert {e for _, e in after} == {e for _, e in before}  # the same rounds, replayed
    assert {m for m in after if m[1].startswith(("r0:", "r1:", "r2:"))} <= before
    assert run.calls_made == run.planned_calls == Judgment.objects.filter(match__run=run).count()
    again = dict(
        Judgment.objects.filter(match__run=run).values_list("match__external_id", "winner")
    )
    assert again == verdicts  # temperature 0: the same verdicts (some reused from the cache)


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_stored_matches_do_not_replay_fails_with_a_reason(
    settings, server, celery_worker
):
    fast_settings(settings)
    prompt_set, contestants, judge = make_world(server.base_url, n_models=4, n_prompts=4)
    run = runs.create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, design="swiss", seed=1
    )
    runs.start_run(run)
    run = wait_until_finished(run)
    EvaluationRun.objects.filter(pk=run.pk).update(status="failed", seed=2)  # tampered
    run.refresh_from_db()
    runs.resume_run(run)
    run = wait_until_finished(run)
    assert run.status == "failed"
    assert "replay" in run.error


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_run_stops_calling_the_judge(settings, server, celery_worker):
    fast_settings(settings)
    prompt_set, contestants, judge = make_world(server.base_url, n_models=6, n_prompts=4)
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    with TaskTracker() as tasks:
        runs.start_run(run)
        runs.cancel_run(run)
        run = wait_until_finished(run)
        assert run.status == "cancelled"
        # Every task queued for the run has run (and found it cancelled): nothing is left
        # that could still call the judge.
        assert tasks.wait_settled()
    assert judge_requests(server)["requests"] < run.planned_calls
    judged = {result for name, result in tasks.finished if name == "judges.tasks.judge_batch"}
    assert judged <= {"cancelled"}  # any judge task queued before the cancel exited at once


def test_evaluate_command_creates_and_starts(db, capsys, django_capture_on_commit_callbacks):
    make_world(NOWHERE, n_models=3, n_prompts=4)
    with django_capture_on_commit_callbacks():
        call_command(
            "evaluate",
            "--prompt-set",
            "evals",
            "--judge",
            "judge-good",
            "--contestants",
            "cand-00,cand-01,cand-02",
            "--design",
            "anchor",
            "--param",
            "anchor=cand-01",
            "--max-prompts",
            "2",
        )
    run = EvaluationRun.objects.get()
    assert run.status == "running" and run.design == "anchor" and run.planned_calls == 2 * 2
    assert run.design_params == {"anchor": "cand-01"}
    assert f"run {run.pk} started: 4 judge calls planned" in capsys.readouterr().out


def test_evaluate_command_reports_bad_input(db):
    from django.core.management.base import CommandError

    make_world(NOWHERE, n_models=3, n_prompts=2)
    with pytest.raises(CommandError, match="contestants: no contestant 'ghost'"):
        call_command(
            "evaluate",
            "--prompt-set",
            "evals",
            "--judge",
            "judge-good",
            "--contestants",
            "ghost,cand-00",
        )
    assert not EvaluationRun.objects.exists()


# --- schedules and the watchdog -------------------------------------------------------------


def test_a_schedule_is_a_crontab_entry_that_starts_copies(db, django_capture_on_commit_callbacks):
    prompt_set, contestants, judge = make_world(NOWHERE, n_models=3, n_prompts=2)
    template = runs.create_run(
        prompt_set=prompt_set, judge=judge, contestants=contestants, name="nightly", seed=3
    )
    schedules.schedule_run(template, "30 2 * * 1-5")
    entry = PeriodicTask.objects.get(name=schedules.schedule_name(template))
    assert entry.task == "judges.tasks.start_scheduled_run" and entry.args == f"[{template.pk}]"
    cron = entry.crontab
    assert (cron.minute, cron.hour, cron.day_of_week) == ("30", "2", "1-5")
    with pytest.raises(Refusal, match="template"):
        runs.start_run(template)

    with django_capture_on_commit_callbacks():
        run_id = schedules.start_scheduled_run(template.pk)
    copy = EvaluationRun.objects.get(pk=run_id)
    assert copy.template_id == template.pk and copy.status == "running" and copy.seed == 3
    assert set(copy.contestants.all()) == set(contestants) and copy.cron == ""

    schedules.schedule_run(template, "")
    assert not PeriodicTask.objects.filter(name=schedules.schedule_name(template)).exists()


@pytest.mark.parametrize("cron", ["61 * * * *", "* * *", "every day", "0 25 * * *"])
def test_bad_crontabs_are_refused(db, cron):
    prompt_set, contestants, judge = make_world(NOWHERE, n_models=2, n_prompts=1)
    template = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    with pytest.raises(Refusal) as caught:
        schedules.schedule_run(template, cron)
    assert caught.value.field == "cron"
    assert not PeriodicTask.objects.filter(name=schedules.schedule_name(template)).exists()


def test_the_watchdog_nudges_runs_that_stalled(db, django_capture_on_commit_callbacks):
    prompt_set, contestants, judge = make_world(NOWHERE, n_models=3, n_prompts=2)
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    with django_capture_on_commit_callbacks():
        runs.start_run(run)
    # Just started, its first step queued: nothing to do.
    assert runs.watch_runs() == []
    # Handed out an hour ago and no verdict since: its tasks were lost.
    EvaluationRun.objects.filter(pk=run.pk).update(
        step="0:judge", step_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks() as callbacks:
        assert runs.watch_runs() == [run.pk]
    assert len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
def test_a_fit_that_fails_gives_its_claim_back_so_the_retry_finishes_the_run(
    settings, server, celery_worker, monkeypatch
):
    from django.db import OperationalError

    import arena.services

    fast_settings(settings)
    prompt_set, contestants, judge = make_world(server.base_url, n_models=3, n_prompts=2)
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    runs.start_run(run)
    run = wait_until_finished(run)
    assert run.status == "done", run.error
    # Every verdict is stored; the fit has not happened yet.
    EvaluationRun.objects.filter(pk=run.pk).update(status="running", step="0:judge")
    fit = arena.services.fit_scope

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(arena.services, "fit_scope", locked)
    with pytest.raises(OperationalError):
        runs.run_step(run.pk)
    run.refresh_from_db()
    assert run.status == "running" and run.step == ""  # not left "fitting"
    monkeypatch.setattr(arena.services, "fit_scope", fit)
    assert runs.run_step(run.pk) == "done"


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_done_write_is_refused_after_its_fit_gives_the_claim_back(
    settings, server, celery_worker, monkeypatch
):
    """The fit is stored, then marking the run done meets another connection's write lock
    held past the wait (SQLite: the busy timeout; PostgreSQL: lock_timeout): the claim is
    given back, so that the task's retry finishes the run instead of finding it "fitting"
    until the claim stalls (ARENA_RUN_STALL_SECONDS)."""
    from django.db import OperationalError, connection, connections, transaction

    fast_settings(settings)
    prompt_set, contestants, judge = make_world(server.base_url, n_models=3, n_prompts=2)
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    runs.start_run(run)
    run = wait_until_finished(run)
    assert run.status == "done", run.error
    celery_worker.stop()  # no task of the run still queued steps it beside this test
    EvaluationRun.objects.filter(pk=run.pk).update(status="running", step="0:judge")

    holding, refused = threading.Event(), threading.Event()

    def hold_the_run_row():  # another connection's write transaction, until the refusal
        try:
            with transaction.atomic():
                EvaluationRun.objects.filter(pk=run.pk).update(error="")
                holding.set()
                refused.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_run_row)
    refit = services.refit

    def refit_then_a_writer_holds_the_run(key, **options):
        snapshot = refit(key, **options)
        if key == run_scope(run).key:
            holder.start()
            assert holding.wait(30)
        return snapshot

    def refuse_after_a_short_wait(execute, sql, params, many, context):
        """The write that marks the run done waits 0.2 s for the lock, not 20 s: SQLite's
        BEGIN IMMEDIATE (busy timeout), PostgreSQL's update of the run (lock_timeout)."""
        marks_done = sql.startswith(
            "BEGIN" if connection.vendor == "sqlite" else f'UPDATE "{EvaluationRun._meta.db_table}"'
        )
        if not (marks_done and holding.is_set() and not refused.is_set()):
            return execute(sql, params, many, context)
        raw = context["cursor"].cursor
        if connection.vendor == "sqlite":
            wait = raw.execute("PRAGMA busy_timeout").fetchone()[0]
            raw.execute("PRAGMA busy_timeout = 200")
        else:
            raw.execute("SET LOCAL lock_timeout = '200ms'")  # until this transaction ends
        try:
            return execute(sql, params, many, context)
        except OperationalError:
            refused.set()
            raise
        finally:
            if connection.vendor == "sqlite":
                raw.execute(f"PRAGMA busy_timeout = {int(wait)}")

    monkeypatch.setattr(services, "refit", refit_then_a_writer_holds_the_run)
    try:
        with connection.execute_wrapper(refuse_after_a_short_wait), pytest.raises(OperationalError):
            runs.run_step(run.pk)
    finally:
        refused.set()
        if holder.is_alive():
            holder.join(30)
    run.refresh_from_db()
    assert run.status == "running" and run.step == ""  # not left "fitting"
    monkeypatch.setattr(services, "refit", refit)
    assert runs.run_step(run.pk) == "done"
    assert EvaluationRun.objects.get(pk=run.pk).status == "done"


# --- the run's board: one refit path ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_verdicts_refit_the_run_board_through_the_throttle_and_the_final_board_is_kept(
    settings, server, celery_worker
):
    """Judge tasks fit nothing themselves: their OK verdicts ask the board throttle for the
    run's provisional board. The final fit takes the board over, so that no provisional fit
    still running stores an older board after it."""
    fast_settings(settings)
    prompt_set, contestants, judge = make_world(server.base_url, n_models=4, n_prompts=4)
    run = runs.create_run(prompt_set=prompt_set, judge=judge, contestants=contestants)
    scope = run_scope(run)
    with TaskTracker(("arena.tasks.refit_leaderboard",)) as refits:
        runs.start_run(run)
        run = wait_until_finished(run)
        assert run.status == "done", run.error
        assert refits.published  # a provisional board was asked of the throttle
        assert refits.wait_settled()  # and every refit asked for has run
    final = LeaderboardSnapshot.objects.latest_of(scope.key)
    assert final is not None and final.created_at <= run.finished_at
    fresh = refresh_leaderboard(scope, bootstrap=0)
    assert final.n_votes == fresh.n_votes == run.calls_made - run.calls_failed
    state = BoardState.objects.get(scope=scope.key)
    assert state.claimed_at is None and state.fitted_up_to >= state.requested_at


@pytest.mark.django_db
def test_a_final_fit_takes_the_board_over_from_a_provisional_fit(monkeypatch):
    """A provisional fit that was running when the run's final fit began stores nothing."""
    import_records(
        [JudgmentRecord(match_id="m1", contestants=("alpha", "beta"), winner="a", voter="v")],
        prompt_set="live",
        source="test",
    )
    key = BoardScope("live", "humans").key
    fit = services._fit
    final_boards = []

    def provisional_fit_overtaken(*args):
        board = fit(*args)
        monkeypatch.setattr(services, "_fit", fit)
        # While the provisional fit runs, the run's final fit happens.
        final_boards.append(services.refit(key, final=True))
        return board

    BoardState.objects.create(scope=key, requested_at=timezone.now())  # a verdict asked
    monkeypatch.setattr(services, "_fit", provisional_fit_overtaken)
    assert services.refit(key) is None  # the provisional board was dropped
    assert final_boards[0] is not None
    assert LeaderboardSnapshot.objects.latest_of(key) == final_boards[0]
    assert LeaderboardSnapshot.objects.filter(scope=key).count() == 1
