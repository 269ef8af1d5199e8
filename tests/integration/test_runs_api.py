"""The runs API: bearer tokens (none / bad / revoked -> 401), create + start, follow, cancel, resume."""

import pytest
from django.core.management import call_command

from arena.models import EvaluationRun
from judges.models import ApiToken
from judges.tokens import create_token, revoke_token
from tests.integration.runs_world import make_world

BASE = "http://127.0.0.1:9/v1"  # never called: these tests do not run a worker


@pytest.fixture
def world(db):
    return make_world(BASE, n_models=4, n_prompts=3)


@pytest.fixture
def token(db):
    return create_token("ci")[1]


def auth(token):
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def body(**overrides):
    data = {
        "prompt_set": "evals",
        "judge": "judge-good",
        "contestants": ["cand-00", "cand-01", "cand-02", "cand-03"],
        "design": "all_pairs",
    }
    return {**data, **overrides}


ENDPOINTS = [
    ("get", "/api/runs"),
    ("post", "/api/runs"),
    ("get", "/api/runs/1"),
    ("post", "/api/runs/1/cancel"),
    ("post", "/api/runs/1/resume"),
]


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_it_refuses_requests_without_a_token(client, world, method, path):
    response = getattr(client, method)(path, body(), content_type="application/json")
    assert response.status_code == 401


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_it_refuses_a_wrong_token(client, world, token, method, path):
    bad = token[:-4] + "AAAA"
    response = getattr(client, method)(path, body(), content_type="application/json", **auth(bad))
    assert response.status_code == 401


def test_it_refuses_a_revoked_token(client, world, token):
    assert revoke_token("ci")
    assert client.get("/api/runs", **auth(token)).status_code == 401


def test_a_session_login_is_not_a_token(client, world, admin_user):
    client.force_login(admin_user)
    assert client.get("/api/runs").status_code == 401


def test_tokens_are_stored_hashed(token):
    row = ApiToken.objects.get(name="ci")
    assert token not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
    assert token.startswith(row.prefix)


def test_it_creates_and_starts_a_run(client, world, token, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/api/runs", body(seed=3), content_type="application/json", **auth(token)
        )
    assert response.status_code == 201, response.content
    data = response.json()
    run = EvaluationRun.objects.get(pk=data["id"])
    assert data["status"] == run.status == "running"
    assert data["planned_calls"] == 6 * 3  # C(4, 2) pairs x 3 prompts, one order
    assert data["contestants"] == ["cand-00", "cand-01", "cand-02", "cand-03"]
    assert data["progress"] == 0 and data["leaderboard"] is None
    assert len(callbacks) == 2  # the first step is queued on commit (and the page told)

    got = client.get(f"/api/runs/{run.pk}", **auth(token))
    assert got.status_code == 200 and got.json()["id"] == run.pk
    listed = client.get("/api/runs", **auth(token)).json()
    assert [r["id"] for r in listed] == [run.pk]


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"prompt_set": "nope"}, "prompt_set"),
        ({"judge": "nobody"}, "judge"),
        ({"contestants": ["cand-00"]}, "contestants"),
        ({"contestants": ["cand-00", "ghost"]}, "contestants"),
        ({"design": "lottery"}, "design"),
        ({"design": "anchor"}, "design_params"),
        ({"design": "anchor", "design_params": {"anchor": "ghost"}}, "design_params"),
        ({"design_params": {"speed": 3}}, "design_params"),
        ({"budget_calls": 5}, "budget_calls"),
        ({"repeats": 0}, "repeats"),
    ],
)
def test_bad_input_gets_a_400_naming_the_field(client, world, token, overrides, field):
    response = client.post(
        "/api/runs", body(**overrides), content_type="application/json", **auth(token)
    )
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not EvaluationRun.objects.exists()  # nothing half-written


def test_unknown_body_fields_are_refused(client, world, token):
    response = client.post(
        "/api/runs", body(colour="red"), content_type="application/json", **auth(token)
    )
    assert response.status_code == 422


def test_a_judge_without_endpoint_cannot_run(client, world, token):
    from arena.models import Judge

    Judge.objects.create(name="imported-judge")
    response = client.post(
        "/api/runs", body(judge="imported-judge"), content_type="application/json", **auth(token)
    )
    assert response.status_code == 400
    assert "no endpoint" in response.json()["detail"]


def test_unknown_runs_are_404(client, world, token):
    for method, path in ENDPOINTS[2:]:
        response = getattr(client, method)(path.replace("1", "999"), **auth(token))
        assert response.status_code == 404
        assert response.json()["detail"] == "no evaluation run 999"


def test_cancel_then_resume(client, world, token, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        run_id = client.post(
            "/api/runs", body(), content_type="application/json", **auth(token)
        ).json()["id"]
    cancelled = client.post(f"/api/runs/{run_id}/cancel", **auth(token))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/runs/{run_id}/cancel", **auth(token))
    assert again.status_code == 409 and "nothing to cancel" in again.json()["detail"]
    with django_capture_on_commit_callbacks() as callbacks:
        resumed = client.post(f"/api/runs/{run_id}/resume", **auth(token))
    assert len(callbacks) == 2
    assert resumed.status_code == 200 and resumed.json()["status"] == "running"


def test_arena_token_command_prints_the_token_once(db, capsys):
    call_command("arena_token", "create", "cli")
    out = capsys.readouterr().out.strip()
    assert out.startswith("arena_") and ApiToken.objects.get(name="cli").prefix == out[:10]
    call_command("arena_token", "list")
    assert out not in capsys.readouterr().out
