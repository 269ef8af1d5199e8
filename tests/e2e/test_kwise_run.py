"""A K-wise run's page in Chromium: started from the page, it fills in live (progress,
Plackett-Luce board) and ends equal to a reload."""

import re

import pytest
from playwright.sync_api import expect

from judges.clients.fake_server import FakeLLMServer
from tests.e2e.browsing import log_in_as_staff
from tests.e2e.conftest import in_server_db, private_server_env, serving
from tests.integration.runs_world import scenario


@pytest.fixture(scope="module")
def kwise_server(tmp_path_factory, browser_executable):
    var = tmp_path_factory.mktemp("arena-kwise")
    with FakeLLMServer(scenario()) as llm:
        env = private_server_env(
            var, ARENA_BOOTSTRAP_ROUNDS="50", ARENA_REFIT_MIN_INTERVAL_SECONDS="0.2"
        )
        in_server_db(env, f"from tests.e2e.kwise_seed import seed; seed({llm.base_url!r})")
        with serving(env, var) as url:
            yield url


def test_a_kwise_run_page_fills_in_live_with_its_plackett_luce_board(kwise_server, page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in_as_staff(page, kwise_server)
    page.goto(kwise_server + "/runs/")
    page.get_by_role("link", name="K-wise e2e run").click()
    expect(page.locator("#run-status")).to_have_text(re.compile("pending"))
    expect(page.locator("#board-method")).to_contain_text("Plackett-Luce")
    page.locator("#start-button").click()

    # no reload: the progress and the board arrive over the run's websocket
    expect(page.locator("#run-status")).to_have_text(re.compile("done"), timeout=60_000)
    expect(page.locator("#calls-made")).to_have_text(page.locator("#planned-calls").inner_text())
    rows = page.locator("#run-board tbody tr")
    expect(rows).to_have_count(5, timeout=20_000)
    live = rows.all_inner_texts()
    meta = page.locator("#board-meta").inner_text()

    page.reload()
    expect(page.locator("#run-board tbody tr")).to_have_count(5)
    assert page.locator("#run-board tbody tr").all_inner_texts() == live
    # the same number of rankings (the fitted time is formatted apart live and on reload)
    assert page.locator("#board-meta").inner_text().split(",")[0] == meta.split(",")[0]
    board = page.evaluate(
        "async (q) => (await fetch('/api/leaderboard?' + q)).json()",
        page.locator("#run").get_attribute("data-query"),
    )
    assert board["method"] == "pl" and "bt" in board["options"]
    assert [r["model"] for r in board["rows"]] == [line.split("\t")[1] for line in live]
    assert errors == []
