"""Rendered answers, hostile texts and names, and numbers, in a real browser.

Its own server (SQLite, in-memory layer, embedded worker) on a database seeded by
tests/e2e/hostile_seed.py: model names, the prompt and the answers carry script payloads;
the answers are Markdown with a table, highlighted code and math."""

import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from arena.rendering import format_count
from tests.e2e.browsing import axe_violations, describe, log_in_as_staff
from tests.e2e.conftest import in_server_db, private_server_env, serving
from tests.e2e.hostile_seed import HOSTILE_JUDGE, HOSTILE_NAMES, SOFT_VOTES, TRACKER

# What a payload would leave in the page if it got through (plotly draws its own svgs).
INJECTED = (
    "img, iframe, object, embed, .markdown svg, td svg, .who *, "
    "[onerror], [onload], [onclick], [onmouseover], a[href^='javascript' i], a[href^='data' i]"
)


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory, browser_executable):
    var = tmp_path_factory.mktemp("arena-hostile")
    env = private_server_env(
        var,
        ARENA_BOOTSTRAP_ROUNDS="50",
        ARENA_REFIT_MIN_INTERVAL_SECONDS="0.2",
        ARENA_REVEAL="always",  # the reveal shows the hostile names too
    )

    def hostile(function: str) -> None:
        """Run ``tests.e2e.hostile_seed.<function>()`` on the server's database."""
        in_server_db(env, f"from tests.e2e import hostile_seed; hostile_seed.{function}()")

    hostile("seed")
    with serving(env, var) as url:
        yield SimpleNamespace(url=url, in_server_db=hostile)


def _guard(page):
    """Dialogs opened and requests sent to the tracker, as they happen."""
    seen = {"dialogs": [], "tracker": []}
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.on(
        "request", lambda request: TRACKER in request.url and seen["tracker"].append(request.url)
    )
    page.on("pageerror", lambda error: seen.setdefault("errors", []).append(str(error)))
    return seen


def _assert_nothing_injected(page, seen):
    assert seen["dialogs"] == []
    assert seen["tracker"] == []  # an image in an answer is a link, never fetched
    assert page.locator(INJECTED).count() == 0, page.locator(INJECTED).evaluate_all(
        "els => els.map(e => e.outerHTML.slice(0, 120))"
    )
    assert (
        page.locator("script:not([src])").count()
        == page.locator("script[type='application/json']").count()
    )


def test_a_battle_renders_markdown_and_runs_nothing(hostile_server, page):
    seen = _guard(page)
    page.goto(hostile_server.url + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    answer = page.locator(".answer").first
    body = answer.locator(".markdown")
    expect(body).to_be_visible()
    # Markdown: a table, highlighted code, math laid out as MathML, a heading.
    expect(body.locator("table th")).to_have_text(["Model", "Score"])
    expect(body.locator("pre.highlight .tok-k").first).to_have_text("def")
    expect(body.locator("pre.highlight .tok-c1")).to_have_text("# squared")
    assert body.locator("math").count() == 2
    box = body.locator("math[display='block']").bounding_box()
    assert box and box["width"] > 20 and box["height"] > 10
    expect(body.locator("h2")).to_contain_text("Answer from")
    # Every payload is text, and the image is a link, never loaded.
    expect(body).to_contain_text("<img src=x onerror=alert(6)>")
    expect(body).to_contain_text("<script>alert(9)</script>")
    expect(body.locator("a.image-link")).to_have_text("image: pixel")
    expect(body.locator("a.image-link")).to_have_attribute("rel", "noopener noreferrer nofollow")
    # The prompt, rendered too.
    expect(page.locator("#prompt-text strong")).to_have_text("these")
    expect(page.locator("#prompt-text")).to_contain_text("<img src=x onerror=alert(4)>")
    _assert_nothing_injected(page, seen)
    # Nothing names a model before the vote (the answers never wrote their names).
    content = page.content()
    assert not any(name in content for name in HOSTILE_NAMES)

    # The raw text, by the keyboard: the toggle is a button with aria-pressed.
    toggle = answer.get_by_role("button", name="Raw text of answer A")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(answer.locator(".text")).to_be_visible()
    expect(answer.locator(".markdown")).to_be_hidden()
    expect(answer.locator(".text")).to_contain_text("| Model | Score |")
    expect(answer.locator(".text")).to_contain_text("$e^{i\\pi} + 1 = 0$")
    page.keyboard.press("Space")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(answer.locator(".markdown")).to_be_visible()
    expect(page.locator("#after-vote")).to_be_hidden()  # Enter on the toggle did not vote
    prompt_toggle = page.get_by_role("button", name="Raw text of the prompt")
    prompt_toggle.click()
    expect(prompt_toggle).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#prompt-box > .text")).to_have_text(re.compile(r"Compare \*\*these\*\*"))

    # After the vote, the names are revealed as text.
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#after-vote")).to_be_visible()
    shown = page.locator(".answer .who").all_inner_texts()
    assert len(shown) == 2 and set(shown) <= set(HOSTILE_NAMES)
    expect(page.locator("#vote-result")).to_contain_text(shown[0])
    _assert_nothing_injected(page, seen)

    # The battle's permalink renders on the server through the same renderer.
    page.locator("#permalink").click()
    expect(page.locator("#permalink-vote")).to_be_visible()
    answers = page.locator("#permalink-battle .answer")
    expect(answers).to_have_count(2)
    expect(answers.locator(".markdown table")).to_have_count(2)
    expect(answers.locator(".markdown pre.highlight .tok-c1")).to_have_text(["# squared"] * 2)
    assert answers.locator(".markdown math").count() == 4
    expect(page.locator("#permalink-prompt strong")).to_have_text("these")
    assert sorted(answers.locator(".who").all_inner_texts()) == sorted(shown)
    toggle = answers.first.get_by_role("button", name="Raw text of answer A")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(answers.first.locator(".text")).to_contain_text("| Model | Score |")
    _assert_nothing_injected(page, seen)
    assert "errors" not in seen


def test_the_leaderboard_shows_names_as_text_in_the_table_and_the_charts(hostile_server, page):
    seen = _guard(page)
    page.goto(hostile_server.url + "/?set=hostile&by=humans")
    expect(page.locator("#board tbody tr[data-model]")).to_have_count(4)
    expect(page.locator("#chart-ci .xtick text")).to_have_count(4, timeout=15000)
    expect(page.locator("#chart-winrate .xtick text")).to_have_count(4)
    expect(page.locator("#chart-history .legendtext")).to_have_count(4)
    assert sorted(page.locator("#board td.model").all_inner_texts()) == sorted(HOSTILE_NAMES)
    for chart in (
        "#chart-ci .xtick text",
        "#chart-winrate .ytick text",
        "#chart-history .legendtext",
    ):
        labels = page.locator(chart).all_text_contents()
        assert sorted(labels) == sorted(HOSTILE_NAMES), (chart, labels)
    # Plotly's hover label shows the name as text too.
    page.evaluate("document.getElementById('chart-ci').scrollIntoView({block: 'center'})")
    point = page.locator("#chart-ci .point").first.bounding_box()
    page.mouse.move(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)
    expect(page.locator(".hoverlayer .hovertext")).to_have_count(1)
    hover = page.locator(".hoverlayer .hovertext").text_content()
    assert any(name in hover for name in HOSTILE_NAMES), hover
    _assert_nothing_injected(page, seen)
    assert "errors" not in seen


def _board_cells(page) -> list[list[str]]:
    return page.locator("#board tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))"
    )


def test_numbers_read_the_same_on_the_first_render_and_after_a_push(hostile_server, browser):
    url = hostile_server.url + "/?set=hostile&by=humans"
    server_only = browser.new_context(java_script_enabled=False)
    live = browser.new_context()
    voter = browser.new_context()
    try:
        hostile_server.in_server_db("soften")
        first = server_only.new_page()
        first.goto(url)
        rendered = _board_cells(first)
        votes = sorted(row[4] for row in rendered)
        # 3.05 is 3.0499999999999998... as a float: "3", as toFixed(1) writes it.
        assert votes == sorted(format_count(v) for v in SOFT_VOTES) == ["12.3", "3", "6", "7.5"]

        page = live.new_page()
        page.goto(url)
        expect(page.locator("#board")).to_have_attribute("data-snapshot", re.compile("."))
        assert _board_cells(page) == rendered  # the script's render of the same board
        assert page.locator("#n-votes").inner_text() == first.locator("#n-votes").inner_text()
        # The script's rule is the server's, value by value.
        values = [0, 0.05, 0.25, 1.05, 2.45, 7.5, 12.96, 1262.95, 1263.0, -0.04, None]
        assert page.evaluate("vs => vs.map(window.arenaFormat.count)", values) == [
            format_count(v) for v in values
        ]

        # A vote, a refit, a push: the pushed board reads as a fresh server render of it.
        snapshot = page.locator("#board").get_attribute("data-snapshot")
        expect(page.locator("#board")).to_have_attribute("data-live", "on")
        battle = voter.new_page()
        battle.goto(hostile_server.url + "/battle/")
        expect(battle.locator(".answer")).to_have_count(2)
        battle.get_by_role("button", name="Tie").click()
        expect(battle.locator("#after-vote")).to_be_visible()
        expect(page.locator("#board")).not_to_have_attribute(
            "data-snapshot", snapshot, timeout=15000
        )
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
        first.reload()
        assert _board_cells(page) == _board_cells(first)
        assert page.locator("#n-votes").inner_text() == first.locator("#n-votes").inner_text()
    finally:
        server_only.close()
        live.close()
        voter.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_rendered_answers_pass_axe_in_both_schemes(hostile_server, browser, scheme):
    """Code colours, tables, math and the raw-text toggles: no serious axe violation."""
    context = browser.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(hostile_server.url + "/battle/")
        expect(page.locator(".answer .markdown pre.highlight").first).to_be_visible()
        violations = axe_violations(page)
        assert violations == [], describe(violations)
        page.locator(".raw-toggle").first.click()  # the prompt's raw text
        violations = axe_violations(page)
        assert violations == [], describe(violations)
    finally:
        context.close()


def test_the_audit_charts_show_names_as_text(hostile_server, page):
    seen = _guard(page)
    log_in_as_staff(page, hostile_server.url)
    page.goto(hostile_server.url + "/audit/?set=hostile")
    expect(page.get_by_role("link", name=re.compile(re.escape(HOSTILE_JUDGE)))).to_be_visible()
    _assert_nothing_injected(page, seen)
    judge_page = page.get_by_role("link", name=re.compile(re.escape(HOSTILE_JUDGE))).get_attribute(
        "href"
    )
    page.goto(hostile_server.url + judge_page)  # the judge's name is in its heading
    expect(page.locator("body[data-charts-drawn]")).to_be_attached(timeout=15000)
    expect(page.locator("h1")).to_contain_text(HOSTILE_JUDGE)
    _assert_nothing_injected(page, seen)
    # The vote-integrity panel charts the models' ratings: their names, as text.
    page.goto(hostile_server.url + "/audit/integrity/?set=hostile")
    expect(page.locator("body[data-charts-drawn]")).to_be_attached(timeout=15000)
    texts = page.locator(".plot .ytick text, .plot .legendtext").all_text_contents()
    assert set(HOSTILE_NAMES) <= set(texts), texts
    assert "bold & co" not in texts  # what plotly makes of the name read as HTML
    _assert_nothing_injected(page, seen)
    assert "errors" not in seen
