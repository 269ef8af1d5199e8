"""Issue 13, findings 5 and 6: leaderboard scopes and bad input.

Scopes are checked against what exists (an unknown one is a 404, a malformed one a 400),
their keys are escaped, and an anonymous read never fits nor stores a board: a board with
no snapshot yet answers empty and asks the throttled refit for it. Bad input of every kind
gets a 4xx that says what is wrong, never a 500; every refusal writes nothing.
"""

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from arena.boards import BoardScope
from arena.errors import Refusal
from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, PromptRecord
from arena.models import (
    BoardState,
    EvaluationRun,
    Judge,
    Judgment,
    LeaderboardSnapshot,
    Match,
    PromptSet,
    Voter,
)
from arena.tasks import refit_leaderboard
from config.asgi import application
from judges.tokens import create_token
from tests.factories import pair_results, post_json
from tests.integration.runs_world import make_world, release_thread_connections

BOARD_URLS = (
    "/api/leaderboard",
    "/api/leaderboard.csv",
    "/api/leaderboard/pairs",
    "/api/leaderboard/history",
    "/",
)
LONG_ID = "9" * 23  # past every database integer (it was an OverflowError)


@pytest.fixture
def toy(db):
    """Human votes in categories "code" and "a|by=judges", one judge, one run of the set."""
    records = pair_results([("alpha", "beta", 6, 2, 1), ("beta", "gamma", 4, 2, 0)])
    records += [
        JudgmentRecord(
            match_id="c1", contestants=("alpha", "gamma"), winner="a", voter="v1", category="code"
        ),
        JudgmentRecord(
            match_id="c2",
            contestants=("alpha", "gamma"),
            winner="a",
            voter="v2",
            category="a|by=judges",
        ),
        JudgmentRecord(match_id="j1", contestants=("alpha", "beta"), winner="b", judge="judgy"),
    ]
    import_records(records, prompt_set="toy", source="test")
    import_records(
        [PromptRecord(external_id="p1", text="q", category="math")], prompt_set="toy", source="test"
    )
    import_records(pair_results([("alpha", "beta", 1, 1, 0)]), prompt_set="other", source="test")
    judge = Judge.objects.get(name="judgy")
    toy, other = PromptSet.objects.get(slug="toy"), PromptSet.objects.get(slug="other")
    return {
        "judge": judge,
        "run": EvaluationRun.objects.create(name="r", prompt_set=toy, judge=judge),
        "other_run": EvaluationRun.objects.create(name="o", prompt_set=other, judge=judge),
    }


def _writes():
    """What a read must not change."""
    return (
        LeaderboardSnapshot.objects.count(),
        sorted(BoardState.objects.values_list("scope", "requested_at")),
    )


def _get(client, url, params):
    response = client.get(url, params)
    assert response.status_code < 500, (url, params, response.content[:300])
    return response


# --- scopes: validated against what exists ---------------------------------------------------


def _unknown_scopes(toy):
    return [
        ({"set": "nope"}, "set"),
        ({"set": "toy", "by": f"judge:{LONG_ID}"}, "by"),
        ({"set": "toy", "by": f"run:{LONG_ID}"}, "by"),
        ({"set": "toy", "by": "judge:987654"}, "by"),
        ({"set": "toy", "by": f"run:{toy['other_run'].id}"}, "by"),  # a run of another set
        ({"set": "toy", "category": "made-up"}, "category"),
        ({"set": "toy", "category": "x" * 5000}, "category"),
        ({"set": "toy", "category": "a|by=humans"}, "category"),
    ]


@pytest.mark.parametrize("url", BOARD_URLS)
def test_an_unknown_scope_is_a_404_that_writes_nothing(client, toy, url):
    before = _writes()
    for params, field in _unknown_scopes(toy):
        response = _get(client, url, params)
        assert response.status_code == 404, (url, params)
        if url != "/":
            assert response.json()["field"] == field and response.json()["detail"]
    assert _writes() == before


MALFORMED = [
    ({"set": "toy", "by": "humans\n"}, "by"),
    ({"set": "toy", "by": "humans\r\nX-Injected: 1"}, "by"),
    ({"set": "toy", "category": "code\x00"}, "category"),
    ({"set": "toy\t"}, "set"),
    ({"set": "toy", "by": "robots"}, "by"),
    ({"set": "toy", "by": "judge:-1"}, "by"),
    ({"set": "toy", "by": "judge:"}, "by"),
    ({"set": "toy", "style": "maybe"}, "style"),
    ({"set": "toy", "style": "\x7f"}, "style"),
]


@pytest.mark.parametrize("url", BOARD_URLS)
def test_a_malformed_scope_is_a_400_that_writes_nothing(client, toy, url):
    before = _writes()
    for params, field in MALFORMED:
        response = _get(client, url, params)
        if url == "/" and field == "set":
            assert response.status_code == 404  # the page lists its sets: not one of them
            continue
        assert response.status_code == 400, (url, params, response.content[:200])
        if url != "/":
            assert response.json()["field"] == field
    assert _writes() == before


def test_the_csv_of_a_newline_scope_is_a_400_not_a_bad_header(client, toy):
    response = client.get("/api/leaderboard.csv", {"set": "toy", "by": "humans\n"})
    assert response.status_code == 400 and response.json()["field"] == "by"


def test_existing_judges_runs_and_categories_are_boards(toy):
    judge, run = toy["judge"], toy["run"]
    assert BoardScope.validated("toy", f"judge:{judge.id}").judge_id == judge.id
    assert BoardScope.validated("toy", f"run:{run.id}").run_id == run.id
    assert BoardScope.validated("toy", f"judge:00{judge.id}").by == f"judge:{judge.id}"
    assert BoardScope.validated("toy", category="code").category == "code"
    assert BoardScope.validated("toy", category="math").category == "math"  # a prompt's
    assert BoardScope.validated("toy", category="a|by=judges").category == "a|by=judges"
    assert BoardScope.validated("toy", style_control="1").style_control


# --- scope keys: escaped --------------------------------------------------------------------


def test_plain_scope_keys_are_unchanged():
    scope = BoardScope("toy", "judge:3", "code", True)
    assert scope.key == "set=toy|by=judge:3|cat=code|style=1"
    assert BoardScope("toy").key == "set=toy|by=humans|cat=|style=0"
    assert BoardScope.from_key_unchecked(scope.key) == scope


@pytest.mark.parametrize("category", ["a|by=judges", "50%", "%7C", "x=y|", "|||", "%25%3D"])
def test_a_value_cannot_inject_a_field_into_a_key(category):
    scope = BoardScope("toy", "humans", category)
    assert scope.key.count("|") == 3 and scope.key.endswith("|style=0")
    assert BoardScope.from_key_unchecked(scope.key) == scope


def test_an_escaped_category_board_is_read_back_as_that_category(toy):
    scope = BoardScope.validated("toy", "humans", "a|by=judges")
    assert scope.key == "set=toy|by=humans|cat=a%7Cby%3Djudges|style=0"
    assert BoardScope.from_key(scope.key) == scope
    snapshot = refit_and_get(scope)
    assert snapshot.n_votes == 1  # the one vote of that category, not the judges' board


def refit_and_get(scope):
    BoardState.objects.create(scope=scope.key, requested_at="2026-01-01T00:00:00Z")
    refit_leaderboard(scope.key)
    return LeaderboardSnapshot.objects.latest_of(scope.key)


@pytest.mark.parametrize("key", ["nonsense", "by=humans", "set=toy|set=x", "set=toy|colour=red"])
def test_a_malformed_key_is_refused(toy, key):
    with pytest.raises(Refusal) as refused:
        BoardScope.from_key(key)
    assert refused.value.status == 400


# --- anonymous reads never write, except the throttled refit of a known board ------------------


def test_a_known_board_without_snapshot_answers_pending_and_asks_the_worker_once(
    client, toy, django_capture_on_commit_callbacks
):
    params = {"set": "toy", "category": "code"}
    key = BoardScope("toy", "humans", "code").key
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            board = client.get("/api/leaderboard", params).json()
        assert board["pending"] and board["rows"] == [] and board["scope"] == key
    assert not LeaderboardSnapshot.objects.exists()  # no read fitted it
    state = BoardState.objects.get()  # one board state, stamped once (the throttle)
    assert state.scope == key and state.fitted_up_to is None
    first_stamp = state.requested_at
    csv = client.get("/api/leaderboard.csv", params)
    assert csv.status_code == 200 and csv.content.decode().strip().count("\n") == 0
    assert BoardState.objects.get().requested_at == first_stamp

    refit_leaderboard(key)  # the worker's task
    board = client.get("/api/leaderboard", params).json()
    assert not board["pending"] and board["n_votes"] == 1


def test_reading_a_fitted_board_writes_nothing(client, toy, django_capture_on_commit_callbacks):
    scope = BoardScope("toy")
    refit_and_get(scope)
    before = _writes()
    with django_capture_on_commit_callbacks(execute=True):
        for url in BOARD_URLS:
            assert _get(client, url, {"set": "toy"}).status_code == 200
    assert _writes() == before


def test_pairs_and_history_of_an_unfitted_board_write_nothing(
    client, toy, django_capture_on_commit_callbacks
):
    before = _writes()
    with django_capture_on_commit_callbacks(execute=True):
        pairs = client.get("/api/leaderboard/pairs", {"set": "toy", "by": "all"})
        history = client.get("/api/leaderboard/history", {"set": "toy", "by": "all"})
    assert pairs.status_code == 200 and pairs.json()["models"] == ["alpha", "beta", "gamma"]
    assert history.status_code == 200 and history.json() == []
    assert _writes() == before


# --- request bodies: JSON objects of valid text, for every endpoint ----------------------------


@pytest.fixture
def arena(db):
    from tests.e2e.seed import seed

    seed()


def _nothing_served():
    return Voter.objects.count(), Match.objects.filter(origin=Match.Origin.ARENA).count()


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        (b'{"prompt_text": "\\ud800 hello"}', "prompt_text", "lone surrogate (\\ud800)"),
        (b'{"prompt_set": "e2e-arena", "prompt_text": "a\\u0000b"}', "prompt_text", "NUL"),
        (b'{"prompt_text": {"deep": ["\\udfff"]}}', "prompt_text.deep[0]", "lone surrogate"),
        (b'{"\\ud800": 1}', "body", "lone surrogate"),
        (b"[]", "body", "expected a JSON object, got an array"),
        (b'[{"k": 2}]', "body", "got an array"),
        (b"1", "body", "got a number"),
        (b'"x"', "body", "got a string"),
        (b"null", "body", "got null"),
        (b"true", "body", "got a boolean"),
        (b"{", "body", "malformed JSON"),
        (b"\xff\xfe{}", "body", "malformed JSON"),
        (b"[" * 100000, "body", "malformed JSON"),
    ],
)
def test_a_body_that_is_not_an_object_of_text_is_a_400(client, arena, raw, field, words):
    before = _nothing_served()
    response = client.post("/api/battles", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and words in response.json()["detail"]
    assert _nothing_served() == before


def test_a_vote_with_a_lone_surrogate_is_a_400(client, arena):
    battle = client.post("/api/battles", {}, content_type="application/json").json()
    raw = b'{"winner": "a", "idempotency_key": "vote-\\ud800-0001"}'
    response = client.post(
        f"/api/battles/{battle['id']}/vote", raw, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["field"] == "idempotency_key"
    assert not Judgment.objects.filter(
        voter__isnull=False, match__origin=Match.Origin.ARENA
    ).exists()


def test_a_value_of_the_wrong_type_is_a_422_naming_the_field(client, arena):
    response = post_json(client, "/api/battles", {"k": "two"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "k" and problem["detail"].startswith("k: ")
    assert problem["errors"][0]["field"] == "k"


# --- the runs API ------------------------------------------------------------------------------


@pytest.fixture
def runs_world(db):
    make_world("http://127.0.0.1:9/v1", n_models=3, n_prompts=3)
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token('fuzz')[1]}"}


def _run_body(**overrides):
    body = {
        "prompt_set": "evals",
        "judge": "judge-good",
        "contestants": ["cand-00", "cand-01", "cand-02"],
    }
    return {**body, **overrides}


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"max_prompts": 10**20}, "max_prompts", "expected 1..2147483647"),
        ({"budget_calls": 10**20}, "budget_calls", "expected 1..2147483647"),
        ({"seed": 10**20}, "seed", "expected 0..2147483647"),
        ({"seed": -1}, "seed", "expected 0.."),
        ({"repeats": 10**20}, "repeats", "1..20"),
        ({"name": "n" * 10_000}, "name", "at most 200 characters"),
        ({"tag": "t" * 10_000}, "tag", "at most"),
        ({"design": "swiss", "design_params": {"rounds": "x"}}, "design_params", "rounds:"),
        ({"design": "swiss", "design_params": {"rounds": 10**20}}, "design_params", "rounds:"),
        (
            {"design": "adaptive", "design_params": {"fraction": "lots"}},
            "design_params",
            "fraction",
        ),
        ({"design": "adaptive", "design_params": {"fraction": 1e308}}, "design_params", ""),
        (
            {"design": "single_elimination", "design_params": {"ratings": ["x", 1]}},
            "design_params",
            "ratings:",
        ),
        (
            {"design": "single_elimination", "design_params": {"ratings": 5}},
            "design_params",
            "ratings:",
        ),
        (
            {"design": "adaptive", "design_params": {"criterion": ["a"]}},
            "design_params",
            "criterion",
        ),
        ({"design_params": {"prompts": True}}, "design_params", "prompts:"),
    ],
)
def test_out_of_range_run_fields_are_a_400_naming_the_field(
    client, runs_world, overrides, field, words
):
    response = client.post(
        "/api/runs",
        json.dumps(_run_body(**overrides)),
        content_type="application/json",
        **runs_world,
    )
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and words in response.json()["detail"]
    assert not EvaluationRun.objects.exists()


def test_a_run_id_past_the_integer_range_is_a_404(client, runs_world):
    for method in ("get", "post"):
        path = f"/api/runs/{LONG_ID}" + ("/cancel" if method == "post" else "")
        response = getattr(client, method)(path, **runs_world)
        assert response.status_code == 404, response.content


# --- 429 answers say when to come back ---------------------------------------------------------


def test_a_rate_limited_battle_says_when_to_retry(client, arena, settings, one_rate_window):
    settings.ARENA_BATTLE_RATE_IP = "1/60"
    cache.clear()
    assert post_json(client, "/api/battles", {}).status_code == 201
    refused = post_json(client, "/api/battles", {})
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 61


def test_a_rate_limited_vote_says_when_to_retry(client, arena, settings):
    settings.ARENA_VOTE_RATE_SESSION = "1/60"
    cache.clear()
    battles = [post_json(client, "/api/battles", {}).json() for _ in range(2)]
    for n, battle in enumerate(battles):
        vote = {"winner": "a", "idempotency_key": f"vote-key-{n:04d}"}
        response = post_json(client, f"/api/battles/{battle['id']}/vote", vote)
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert Judgment.objects.filter(match__origin=Match.Origin.ARENA).count() == 1


# --- websockets: a frame that is not JSON gets an error, not a 1011 -----------------------------


async def _talk(path, frames):
    ws = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://127.0.0.1")])
    connected, code = await ws.connect()
    answers = []
    if connected:
        await ws.receive_json_from(timeout=5) if "runs" in path else None
        for frame in frames:
            if isinstance(frame, bytes):
                await ws.send_to(bytes_data=frame)
            else:
                await ws.send_to(text_data=frame)
            answers.append(await ws.receive_json_from(timeout=5))
        await ws.disconnect()
    await release_thread_connections()
    return connected, code, answers


BAD_FRAMES = [
    "not json",
    "{",
    b"\x00\x01",
    "[" * 100000,  # too large
    "[" * 1000 + "]" * 1000,  # too deep for the decoder's recursion: refused before it
    '{"subscribe": "\\ud800"}',
    "[]",
    "7",
]


@pytest.mark.django_db(transaction=True)
def test_the_leaderboard_socket_answers_bad_frames_and_stays_open():
    connected, _, answers = asyncio.run(
        _talk("/ws/leaderboard/", [*BAD_FRAMES, json.dumps({"subscribe": "set=toy"})])
    )
    assert connected
    assert [a["type"] for a in answers] == ["error"] * len(BAD_FRAMES) + ["subscribed"]
    assert "not JSON" in answers[0]["message"] and "binary" in answers[2]["message"]
    assert "too large" in answers[3]["message"] and "nested deeper" in answers[4]["message"]


@pytest.mark.django_db(transaction=True)
def test_the_run_socket_answers_bad_frames_and_refuses_unknown_runs():
    make_world("http://127.0.0.1:9/v1", n_models=3, n_prompts=2)
    judge = Judge.objects.get(name="judge-good")
    run = EvaluationRun.objects.create(
        name="r", prompt_set=PromptSet.objects.get(slug="evals"), judge=judge
    )
    connected, _, answers = asyncio.run(_talk(f"/ws/runs/{run.pk}/", ["not json", b"\x00"]))
    assert connected and [a["type"] for a in answers] == ["error", "error"]
    for path in (f"/ws/runs/{LONG_ID}/", "/ws/runs/987654/"):
        connected, code, _ = asyncio.run(_talk(path, []))
        assert not connected and code == 4404


# --- the schema lists the real answers ---------------------------------------------------------


def test_the_openapi_schema_lists_the_error_answers(client):
    paths = client.get("/api/openapi.json").json()["paths"]

    def statuses(path, method):
        return set(paths[path][method]["responses"])

    for path in ("/api/leaderboard", "/api/leaderboard.csv", "/api/leaderboard/pairs"):
        assert {"200", "400", "404", "422"} <= statuses(path, "get")
    assert {"201", "400", "403", "404", "422", "429"} <= statuses("/api/battles", "post")
    vote = "/api/battles/{battle_id}/vote"
    assert {"200", "400", "403", "404", "409", "410", "422", "429"} <= statuses(vote, "post")
    assert {"201", "400", "401", "409", "422"} <= statuses("/api/runs", "post")
    assert {"200", "401", "404", "422"} <= statuses("/api/runs/{run_id}", "get")
    csv = paths["/api/leaderboard.csv"]["get"]["responses"]["200"]["content"]
    assert list(csv) == ["text/csv"]


def test_the_migration_keeps_every_real_key_and_drops_the_malformed_ones(toy):
    import importlib

    migration = importlib.import_module("arena.migrations.0008_drop_malformed_scope_keys")
    real = [
        BoardScope("toy"),
        BoardScope("toy", "judges", "code", True),
        BoardScope("toy", f"judge:{toy['judge'].id}"),
        BoardScope("toy", f"run:{toy['run'].id}", "a|by=judges"),
        BoardScope("toy", "all", "50% = half"),
    ]
    assert all(migration.canonical(scope.key) for scope in real)
    junk = [
        "set=toy|by=humans\n|cat=|style=0",
        "set=toy|by=humans|cat=a|by=judges|style=0",
        "set=toy|by=judge:007|cat=|style=0",
        "set=toy|by=robots|cat=|style=0",
        "set=toy|by=humans|cat=50%|style=0",
        "set=toy|by=humans|cat=|style=true",
        "set=toy|by=humans",
    ]
    assert not any(migration.canonical(key) for key in junk)
    from django.apps import apps

    BoardState.objects.bulk_create(
        BoardState(scope=key, requested_at="2026-01-01T00:00:00Z") for key in [real[0].key, *junk]
    )
    migration.drop_malformed(apps, None)
    assert list(BoardState.objects.values_list("scope", flat=True)) == [real[0].key]


def test_a_vote_reads_past_board_states_stored_before_keys_were_escaped(toy):
    from arena.votes import scopes_touched_by

    BoardState.objects.create(
        scope="set=toy|by=humans|cat=a|by=judges|style=0", requested_at="2026-01-01T00:00:00Z"
    )
    toy_id = PromptSet.objects.get(slug="toy").id
    assert BoardScope("toy").key in scopes_touched_by(toy_id, "toy", "code")
