"""Per-aspect ballots (issue 15 part 3) in a real browser: answered from the keyboard, sent
with the vote, counted on each aspect's board; no model name reaches the page before it."""

import json
import re
import time
import urllib.request

from playwright.sync_api import expect

from tests.e2e.seed import CONTESTANTS
from tests.e2e.test_battle import _watch_traffic
from tests.e2e.test_pages_a11y import _tab_to

NAMES = re.compile("|".join(map(re.escape, CONTESTANTS)))


def _board(base: str, crit: str) -> dict:
    with urllib.request.urlopen(f"{base}/api/leaderboard?set=e2e-arena&by=humans&crit={crit}") as r:
        return json.loads(r.read())


def _votes_on(base: str, crit: str, at_least: int, timeout: float = 30.0) -> dict:
    """The aspect's board once it counts ``at_least`` votes (it is refitted after the vote)."""
    deadline = time.monotonic() + timeout
    while True:
        board = _board(base, crit)
        if board.get("n_votes", 0) >= at_least or time.monotonic() > deadline:
            return board
        time.sleep(0.3)


def test_a_vote_with_aspect_ballots_from_the_keyboard(arena_server, page):
    before = {c: _board(arena_server, c).get("n_votes", 0) for c in ("correctness", "style")}
    traffic = _watch_traffic(page)
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    aspects = page.locator("#vote-aspects")
    expect(aspects).to_be_visible()
    expect(aspects.locator("fieldset")).to_have_count(3)
    # correctness: A (Space checks the radio Tab lands on)
    _tab_to(page, "input[name='aspect-correctness'][value='a']")
    page.keyboard.press("Space")
    expect(
        page.get_by_role("group", name="Correctness").get_by_label("A", exact=True)
    ).to_be_checked()
    # style: B (arrows move through a radio group and check)
    _tab_to(page, "input[name='aspect-style'][value='a']")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("group", name="Style").get_by_label("B", exact=True)).to_be_checked()
    assert not NAMES.search(page.content())
    # the overall vote by its shortcut, with the focus still on a radio
    page.keyboard.press("a")
    expect(page.locator("#vote-result")).to_contain_text("You preferred")
    expect(page.locator("#vote-aspects input").first).to_be_disabled()
    sent = [body for url, body in traffic if url.endswith("/vote")]
    assert sent and json.loads(sent[0])["recorded"] is True
    assert [(url, body[:200]) for url, body in traffic if NAMES.search(body)] == []

    # each aspect's board counts the vote; the unanswered aspect's board is not asked for it
    for crit in ("correctness", "style"):
        board = _votes_on(arena_server, crit, before[crit] + 1)
        assert board["n_votes"] >= before[crit] + 1, (crit, board)
        assert len(board["rows"]) == 2

    # the next battle starts with the aspects cleared
    page.keyboard.press("n")
    expect(page.locator("#after-vote")).to_be_hidden()
    expect(page.locator("#vote-aspects input:checked")).to_have_count(0)
    expect(page.locator("#vote-aspects input").first).to_be_enabled()


def test_a_vote_without_aspects_still_counts(arena_server, page):
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    page.get_by_role("button", name="B is better").click()
    expect(page.locator("#vote-result")).to_contain_text("You preferred")
