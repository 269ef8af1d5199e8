"""A fuzz test of the public JSON API against its own OpenAPI schema (schemathesis).

The schema is read from the served ``/api/openapi.json``; schemathesis generates valid
and invalid requests for every operation (query values, path ids, bodies: wrong types,
out-of-range numbers, odd Unicode, missing and extra fields) and sends them through the
real Django application in this process (``config.wsgi``: the whole middleware stack, no
server). Every answer must be a non-5xx status the schema lists for that operation, with
the content type and body shape it declares.

Requests are anonymous, with the CSRF cookie and header the site's own pages send (so
bodies reach validation); the runs API is fuzzed both without a token (401) and with a
valid one. Bounded: a fixed number of examples per operation, derandomized (the same
requests on every run), well under a minute in all.
"""

import json
import secrets
from dataclasses import fields

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from arena.matchmaking import DESIGNS
from arena.models import EvaluationRun, PromptSet
from config.wsgi import application
from judges.runs import create_run
from judges.runs.create import DESIGN_NAMES
from judges.tokens import create_token
from tests.e2e.seed import seed
from tests.integration.runs_world import make_world

pytestmark = pytest.mark.slow  # about half a minute: CI runs it, `make test-fast` does not

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
EXAMPLES = 25  # per operation and test
CANDIDATES = ["cand-00", "cand-01", "cand-02"]  # tests.integration.runs_world's names


@pytest.fixture
def world(transactional_db, settings):
    """A public arena with votes, a prompt set of candidates with a judge, an API token."""
    # Rate limits high enough that bodies reach validation (a 429 is a documented answer).
    for name in ("BATTLE_RATE_SESSION", "BATTLE_RATE_IP", "NEW_VOTER_RATE_IP"):
        setattr(settings, f"ARENA_{name}", "1000/60")
    seed()
    make_world("http://127.0.0.1:9/v1", n_models=3, n_prompts=2)
    assert PromptSet.objects.filter(is_public_arena=True).exists()
    csrf = secrets.token_hex(16)
    run = create_run(prompt_set="evals", judge="judge-good", contestants=CANDIDATES)
    return {
        "cookies": {"csrftoken": csrf},
        "headers": {"X-CSRFToken": csrf, "Origin": "http://localhost"},
        "token": create_token("fuzz")[1],
        "set": "e2e-arena",
        "run_id": run.id,
        "run": {"prompt_set": "evals", "judge": "judge-good", "contestants": CANDIDATES},
    }


FUZZ = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@FUZZ
def test_anonymous_requests_never_get_a_5xx_nor_an_undocumented_answer(case, world):
    case.call_and_validate(headers=world["headers"], cookies=world["cookies"], checks=CHECKS)
    if _ground(case, world):  # the same fuzzed values, beside names of real rows
        case.call_and_validate(headers=world["headers"], cookies=world["cookies"], checks=CHECKS)


@schema.include(path_regex="^/api/runs").parametrize()
@FUZZ
def test_token_requests_to_the_runs_api_never_get_a_5xx(case, world):
    headers = {**world["headers"], "Authorization": f"Bearer {world['token']}"}
    case.call_and_validate(headers=headers, cookies=world["cookies"], checks=CHECKS)
    if _ground(case, world):
        case.call_and_validate(headers=headers, cookies=world["cookies"], checks=CHECKS)


def _ground(case, world) -> bool:
    """Point a generated request at rows that exist (a prompt set, a run, a run's judge and
    contestants), keeping its other fuzzed values, so that it gets past the lookups to
    the checks behind them. False if the request names nothing to replace."""
    grounded = False
    if isinstance(case.query, dict) and "set" in case.query:
        case.query = {**case.query, "set": world["set"]}
        grounded = True
    if isinstance(case.path_parameters, dict) and "run_id" in case.path_parameters:
        case.path_parameters = {**case.path_parameters, "run_id": world["run_id"]}
        grounded = True
    if case.operation.path == "/api/runs" and isinstance(case.body, dict):
        design = case.body.get("design")
        case.body = {**case.body, **world["run"]}
        if design not in EvaluationRun.Design.values:
            case.body["design"] = EvaluationRun.Design.ALL_PAIRS
        grounded = True
    return grounded


# --- run creation: every field at once, far out of range ---------------------------------------

# Text of any code point, lone surrogates and NUL included (the parser refuses those).
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)
# Integers past every column and array size, at the edges of 32 and 64 bits (hypothesis
# favours the first ones), and small ones.
EDGES = [10**20, 2**31, 2**63, -1, 10**25, 2**31 - 1, 2**63 - 1, -(2**63), 0, 1]
NUMBERS = st.sampled_from(EDGES) | st.integers(min_value=-3, max_value=30) | JSON_SCALARS
FUZZED_FIELDS = {
    "contestants": st.lists(ANY_TEXT, max_size=3) | JSON_SCALARS,
    "design": ANY_TEXT | JSON_SCALARS,
    "max_prompts": NUMBERS,
    "budget_calls": NUMBERS,
    "repeats": NUMBERS,
    "seed": NUMBERS,
    "name": st.text(max_size=300) | st.just("n" * 10_000) | JSON_SCALARS,
    "tag": ANY_TEXT | st.just("t" * 10_000),
    # a jury run (issue 15): its judges by name or id, and its design
    "jurors": st.lists(
        st.sampled_from(["judge-good", "judge-two", "judge-good", "1", "2", str(10**20)])
        | ANY_TEXT,
        max_size=4,
    )
    | JSON_SCALARS,
    "jury": st.dictionaries(
        st.sampled_from(["size", "rule", "weights_from", "quorum"]),
        st.sampled_from(["majority", "mean", "weighted", "humans", "gold", 1, 2, 3]) | NUMBERS,
        max_size=3,
    )
    | JSON_SCALARS,
}
# Each design's own parameters (run.design -> its class's fields).
DESIGN_PARAMETERS = {
    design: sorted(f.name for f in fields(DESIGNS[name]) if f.name != "name")
    for design, name in DESIGN_NAMES.items()
}


@st.composite
def run_bodies(draw):
    """A valid run of some design with one to three of its fields (or its design's
    parameters) fuzzed: each bad value meets the checks behind the ones it passes."""
    design = draw(st.sampled_from(sorted(DESIGN_PARAMETERS)))
    body = {
        "prompt_set": "evals",
        "judge": "judge-good",
        "contestants": CANDIDATES,
        "design": design,
    }
    fuzzed = st.sampled_from([*sorted(FUZZED_FIELDS), "design_params", "design_params"])
    for field in draw(st.lists(fuzzed, min_size=1, max_size=3, unique=True)):
        if field == "design_params":
            names = st.sampled_from(DESIGN_PARAMETERS[design])
            body[field] = draw(st.dictionaries(names, NUMBERS | JSON_VALUES, max_size=3))
        else:
            body[field] = draw(FUZZED_FIELDS[field])
    return body


@pytest.fixture
def runs_api(db, client):
    _, _, judge = make_world("http://127.0.0.1:9/v1", n_models=3, n_prompts=2)
    judge.pk, judge.name, judge.model = None, "judge-two", "judge-two"  # a second juror
    judge.save()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {create_token('fuzz')[1]}"
    return client


@given(body=run_bodies())
@hypothesis.settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_a_run_of_any_fields_is_created_or_refused_with_a_4xx(runs_api, body):
    before = EvaluationRun.objects.count()
    response = runs_api.post("/api/runs", json.dumps(body), content_type="application/json")
    assert response.status_code in (201, 400, 422), (body, response.content[:300])
    created = EvaluationRun.objects.count() - before
    assert created == (1 if response.status_code == 201 else 0)
    if response.status_code != 201:
        assert response.json()["detail"]
