"""Model pages, side by side and battle permalinks in a real browser against the real server
(the seed's default ARENA_REVEAL=fresh: stored answers are never named; the fake server's
models answer typed questions live)."""

import re

from playwright.sync_api import expect

from tests.e2e.browsing import axe_violations, describe, overflow
from tests.e2e.seed import CONTESTANTS, LIVE_CONTESTANTS

NAMES = re.compile("|".join(map(re.escape, CONTESTANTS)))


def _links(page):
    return page.locator("#board tbody td.model a")


def test_leaderboard_rows_link_to_model_pages_before_and_after_a_push(arena_server, browser):
    context = browser.new_context()
    board = context.new_page()
    board.goto(arena_server + "/?set=e2e-arena&by=humans")
    expect(board.locator("#live-label")).to_have_text("live")
    # Every row links (earlier tests' votes on typed questions may have added models).
    rows = board.locator("#board tbody tr[data-model]")
    expect(rows.first).to_be_visible()
    models = rows.count()
    assert models >= len(CONTESTANTS)
    expect(_links(board)).to_have_count(models)
    before = int(board.locator("#n-votes").inner_text())

    voter = context.new_page()  # a vote elsewhere: the board is refitted and pushed
    voter.goto(arena_server + "/battle/")
    expect(voter.locator(".answer")).to_have_count(2)
    voter.get_by_role("button", name="A is better").click()
    expect(voter.locator("#after-vote")).to_be_visible()
    expect(board.locator("#n-votes")).to_have_text(str(before + 1), timeout=15000)
    expect(_links(board)).to_have_count(models)
    for link in _links(board).all():
        assert link.get_attribute("href") == f"/models/{link.inner_text()}/"

    first = _links(board).first
    name = first.inner_text()
    first.click()
    expect(board).to_have_url(re.compile(re.escape(f"/models/{name}/") + "$"))
    expect(board.locator("h1")).to_have_text(name)
    expect(board.locator("#model-boards tbody tr")).to_have_count(1)  # the human board
    expect(board.locator("#model-rivals tbody tr").first).to_be_visible()
    expect(board.locator("#chart-history .main-svg").first).to_be_visible()
    expect(board.locator("#chart-rivals .main-svg").first).to_be_visible()
    data = board.request.get(arena_server + "/api/model?name=" + name)
    assert data.ok and data.json()["model"]["name"] == name
    csv = board.request.get(arena_server + board.locator("#model-csv").get_attribute("href"))
    assert csv.ok and csv.text().startswith("prompt_set,opponent,votes")
    missing = board.goto(arena_server + "/models/no-such-model/")
    assert missing.status == 404
    context.close()


def test_side_by_side_names_both_answers_and_takes_a_vote(arena_server, page):
    page.goto(arena_server + "/side-by-side/")
    # Stored answers are not named under ARENA_REVEAL=fresh: typed questions only.
    expect(page.locator("#sbs-stored-note")).to_be_visible()
    page.locator("#sbs-model-a").select_option(LIVE_CONTESTANTS[1])
    page.locator("#sbs-model-b").select_option(LIVE_CONTESTANTS[0])
    page.locator("#sbs-text").fill("Which is heavier, a kilo of iron or of feathers?")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#sbs-answers .answer")).to_have_count(2)
    expect(page.locator("#sbs-answers .who")).to_have_text(LIVE_CONTESTANTS[1::-1])
    expect(page.locator("#sbs-answers .answer.writing")).to_have_count(0, timeout=15000)
    assert all(len(t) > 20 for t in page.locator("#sbs-answers .text").all_inner_texts())
    page.get_by_role("button", name="Left is better").click()
    expect(page.locator("#sbs-result")).to_contain_text(f"You preferred {LIVE_CONTESTANTS[1]}")
    expect(page.locator("#sbs-result")).to_contain_text("count on no leaderboard")
    page.locator("#sbs-permalink").click()
    expect(page).to_have_url(re.compile(r"/battles/[0-9a-f-]{36}/$"))
    expect(page.locator("#permalink-vote")).to_have_text(
        f"The voter preferred {LIVE_CONTESTANTS[1]}."
    )
    expect(page.locator("#permalink-prompt")).to_contain_text("kilo of iron")  # its author


def test_a_battle_permalink_is_hidden_before_the_vote_and_shown_after(arena_server, browser):
    context = browser.new_context()
    page = context.new_page()
    with page.expect_response(lambda r: r.url.endswith("/api/battles")) as served:
        page.goto(arena_server + "/battle/")
    battle = served.value.json()
    expect(page.locator(".answer")).to_have_count(2)
    url = f"{arena_server}/battles/{battle['id']}/"
    expect(page.locator("#permalink")).to_be_hidden()

    other = browser.new_context()
    stranger = other.new_page()
    before = stranger.goto(url)
    assert before.status == 404 and battle["prompt"] not in stranger.content()
    mine = context.new_page()
    assert mine.goto(url).status == 404  # its own voter sees nothing before the vote either
    mine.close()

    page.get_by_role("button", name="B is better").click()
    expect(page.locator("#permalink")).to_be_visible()
    assert page.locator("#permalink").get_attribute("href") == f"/battles/{battle['id']}/"
    after = stranger.goto(url)
    assert after.status == 200
    expect(stranger.locator("#permalink-prompt")).to_have_text(battle["prompt"])
    expect(stranger.locator("#permalink-vote")).to_have_text("The voter preferred answer B.")
    expect(stranger.locator("#permalink-withheld")).to_be_visible()  # stored answers: no names
    assert not NAMES.search(stranger.content())
    other.close()
    context.close()


def test_these_pages_are_accessible_and_fit_a_phone(arena_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#permalink")).to_be_visible()
    permalink = page.locator("#permalink").get_attribute("href")
    for path in (f"/models/{CONTESTANTS[0]}/", "/side-by-side/", permalink):
        page.goto(arena_server + path)
        if path.startswith("/models/"):
            expect(page.locator("#chart-history .main-svg").first).to_be_visible()
        violations = axe_violations(page)
        assert violations == [], path + "\n" + describe(violations)
        wide = overflow(page)
        assert wide["scrollWidth"] <= wide["clientWidth"], (path, wide)
    context.close()
