"""The vote flow in a real browser against the real server."""

import re

from playwright.sync_api import expect

from tests.e2e.seed import CONTESTANTS

NAMES = re.compile("|".join(map(re.escape, CONTESTANTS)))


def _watch_traffic(page):
    """Everything the browser receives: response bodies and websocket frames."""
    seen = []

    def on_response(response):
        try:
            seen.append((response.url, response.text()))
        except Exception:  # bodies of redirects / aborted requests
            pass

    page.on("response", on_response)
    page.on(
        "websocket",
        lambda ws: ws.on("framereceived", lambda payload: seen.append(("ws", str(payload)))),
    )
    return seen


def test_stored_answers_stay_anonymous_before_and_after_the_vote(arena_server, page):
    """The default reveal policy ("fresh"): a stored answer's author is never shown, so
    throwaway votes cannot map texts to models (a typed question's fresh answers are
    revealed: test_a_typed_question_is_answered_live_then_voted)."""
    traffic = _watch_traffic(page)
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    expect(page.locator("#prompt-text")).not_to_be_empty()
    # Before the vote no model name is anywhere the browser can read.
    assert not NAMES.search(page.content())
    assert not NAMES.search(page.url)
    leaks = [(url, body[:200]) for url, body in traffic if NAMES.search(body)]
    assert leaks == []
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#after-vote")).to_be_visible()
    expect(page.locator("#vote-result")).to_contain_text("You preferred")
    expect(page.locator("#vote-result")).to_contain_text("The models stay anonymous")
    assert not any(name in CONTESTANTS for name in page.locator(".answer .who").all_inner_texts())
    assert not NAMES.search(page.content())
    assert [(url, body[:200]) for url, body in traffic if NAMES.search(body)] == []
    page.get_by_role("button", name="Next battle").click()
    expect(page.locator("#battle-error")).to_be_hidden()
    expect(page.locator("#after-vote")).to_be_hidden()
    expect(page.locator(".answer .who").first).to_be_empty()


def test_keyboard_shortcuts_vote_and_can_be_turned_off(arena_server, page):
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    page.keyboard.press("t")
    expect(page.locator("#vote-result")).to_contain_text("You called it a tie.")
    page.keyboard.press("n")
    expect(page.locator("#after-vote")).to_be_hidden()
    page.get_by_label("Keyboard shortcuts").uncheck()
    page.keyboard.press("a")
    page.wait_for_timeout(300)
    expect(page.locator("#after-vote")).to_be_hidden()
    page.get_by_label("Keyboard shortcuts").check()
    page.keyboard.press("x")
    expect(page.locator("#vote-result")).to_contain_text("You found both answers bad.")


def test_a_k_wise_battle_takes_a_ranking(arena_server, page):
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    page.get_by_label("Answers").select_option("3")
    page.get_by_role("button", name="New battle").click()
    expect(page.locator(".answer")).to_have_count(3)
    assert not NAMES.search(page.content())
    ranks = page.locator("select.rank")
    ranks.nth(0).select_option("2")
    ranks.nth(1).select_option("1")
    ranks.nth(2).select_option("2")
    page.get_by_role("button", name="Submit ranking").click()
    expect(page.locator("#after-vote")).to_be_visible()
    expect(page.locator("#vote-result")).to_contain_text("The models stay anonymous")
    assert not NAMES.search(page.content())


def test_a_k_wise_battle_can_pick_the_best_by_keyboard(arena_server, page):
    page.goto(arena_server + "/battle/")
    page.get_by_label("Answers").select_option("4")
    page.get_by_role("button", name="New battle").click()
    expect(page.locator(".answer")).to_have_count(4)
    page.locator("body").click()
    page.keyboard.press("3")
    expect(page.locator("#vote-result")).to_contain_text("as the best")


def test_an_open_leaderboard_moves_when_someone_votes(arena_server, browser):
    board_context = browser.new_context()
    board = board_context.new_page()
    board.goto(arena_server + "/?set=e2e-arena&by=humans")
    expect(board.locator("#live-label")).to_have_text("live")
    before = int(board.locator("#n-votes").inner_text())

    voter_context = browser.new_context()
    voter = voter_context.new_page()
    voter.goto(arena_server + "/battle/")
    expect(voter.locator(".answer")).to_have_count(2)
    voter.get_by_role("button", name="B is better").click()
    expect(voter.locator("#after-vote")).to_be_visible()

    expect(board.locator("#n-votes")).to_have_text(str(before + 1), timeout=15000)
    assert board.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
    board_context.close()
    voter_context.close()


def test_a_typed_question_is_answered_live_then_voted(arena_server, page):
    from tests.e2e.seed import LIVE_CONTESTANTS

    traffic = _watch_traffic(page)
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    page.get_by_placeholder("Type a question…").fill("Why is the sky blue?")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#prompt-text")).to_have_text("Why is the sky blue?")
    expect(page.locator(".answer.writing")).to_have_count(0, timeout=15000)
    assert all(len(t) > 20 for t in page.locator(".answer .text").all_inner_texts())
    names = re.compile("|".join(map(re.escape, LIVE_CONTESTANTS)))
    assert not names.search(page.content())
    assert [url for url, body in traffic if names.search(body)] == []
    page.get_by_role("button", name="B is better").click()
    expect(page.locator("#after-vote")).to_be_visible()
    assert all(n in LIVE_CONTESTANTS for n in page.locator(".answer .who").all_inner_texts())
