"""ARENA_VOTER_GATE=pow in the browser: a new session's first battle costs a proof of work
that the page solves by itself (static/arena/pow.js through battle_client.js), once."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import in_server_db, private_server_env, serving


@pytest.fixture(scope="module")
def gated_server(tmp_path_factory, browser_executable):
    var = tmp_path_factory.mktemp("arena-pow")
    env = private_server_env(
        var,
        ARENA_BOOTSTRAP_ROUNDS="20",
        ARENA_VOTER_GATE="pow",
        ARENA_POW_BITS="10",  # a few milliseconds in the browser
    )
    in_server_db(env, "from tests.e2e.seed import seed; seed()")
    with serving(env, var) as url:
        yield url


def test_a_new_session_proves_work_once_then_battles_and_votes(gated_server, page):
    challenges = []
    page.on("request", lambda r: challenges.append(r.url) if "/challenge" in r.url else None)
    page.goto(gated_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    expect(page.locator("#battle-error")).to_be_hidden()
    assert len(challenges) == 1
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#vote-result")).to_contain_text("You preferred")
    page.get_by_role("button", name="Next battle").click()
    expect(page.locator("#after-vote")).to_be_hidden()
    expect(page.locator(".answer")).to_have_count(2)
    assert len(challenges) == 1  # the session is a voter now: no second proof
