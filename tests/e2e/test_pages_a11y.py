"""Accessible and responsive pages (issue 18), in Chromium on the running app.

- axe-core (vendored, tests/e2e/vendor/axe-core) finds no serious or critical violation on
  any public page nor on the judge-audit pages, in light and in dark mode;
- the battle page takes a vote from the keyboard alone and the leaderboard's filters work
  from the keyboard, with a visible focus ring;
- nothing scrolls sideways on a 390 x 844 phone;
- dark mode follows prefers-color-scheme, charts included, with readable chart text.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import (
    axe_violations,
    describe,
    log_in_as_staff,
    overflow,
    watch_errors,
)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# Page background (--bg) of each scheme, from static/arena/arena.css.
BACKGROUND = {"light": "rgb(248, 249, 251)", "dark": "rgb(15, 18, 24)"}
SURFACE = {"light": "rgb(255, 255, 255)", "dark": "rgb(24, 28, 36)"}


@pytest.fixture
def context_for(browser):
    contexts = []

    def make(scheme="light", viewport=DESKTOP):
        context = browser.new_context(color_scheme=scheme, viewport=viewport)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def _ready(page, url):
    """Open a page and wait until what its scripts draw is there."""
    page.goto(url)
    if page.locator("#board").count():
        expect(page.locator("#board tbody tr[data-model]").first).to_be_visible(timeout=15000)
        for chart in ("chart-ci", "chart-history", "chart-winrate", "chart-battles"):
            expect(page.locator(f"#{chart} .main-svg").first).to_be_attached(timeout=15000)
    if page.locator("#battle-options").count():
        expect(page.locator(".answer").first).to_be_visible(timeout=15000)
        expect(page.locator("#prompt-text")).not_to_be_empty()
    if page.locator("#audit-charts").count() and page.evaluate(
        "JSON.parse(document.getElementById('audit-charts').textContent).length"
    ):
        expect(page.locator("body[data-charts-drawn]")).to_be_attached(timeout=15000)


def _public_pages(page, base):
    """Every page a visitor reaches without logging in (config/urls.py, arena/urls.py,
    judges/urls.py), the run page by following the run list."""
    page.goto(base + "/runs/")
    run = page.evaluate(
        "[...document.querySelectorAll('a')].map((a) => a.getAttribute('href'))"
        ".find((href) => /^\\/runs\\/\\d+\\/$/.test(href))"
    )
    assert run, "the seed's run is not listed"
    # A battle's permalink exists once it was voted on.
    page.goto(base + "/battle/")
    page.get_by_role("button", name="A is better").click()
    expect(page.locator("#permalink")).to_be_visible()
    permalink = page.locator("#permalink").get_attribute("href")
    return {
        "leaderboard": base + "/",
        "leaderboard, another set": base + "/?set=e2e-audit",
        "battle": base + "/battle/",
        "runs": base + "/runs/",
        "run": base + run,
        "model": base + "/models/owl-7b/",
        "side by side": base + "/side-by-side/",
        "battle permalink": base + permalink,
    }


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_public_pages_have_no_serious_accessibility_violations(arena_server, context_for, scheme):
    page = context_for(scheme).new_page()
    errors = watch_errors(page)
    found = {}
    for name, url in _public_pages(page, arena_server).items():
        _ready(page, url)
        if violations := axe_violations(page):
            found[name] = violations
    assert found == {}, describe(found)
    assert errors == []
    # The check sees a violation when there is one: a select without a label.
    page.evaluate("document.querySelector('main').append(document.createElement('select'))")
    assert "select-name" in {v["id"] for v in axe_violations(page)}


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_audit_pages_have_no_serious_accessibility_violations(arena_server, context_for, scheme):
    page = context_for(scheme).new_page()
    errors = watch_errors(page)
    log_in_as_staff(page, arena_server)
    query = "?set=e2e-audit"
    pages = [f"/audit/{query}", f"/audit/agreement/{query}", f"/audit/integrity/{query}"]
    pages.append(f"/audit/perturbations/{query}")
    _ready(page, arena_server + pages[0])
    judge = page.locator("a[href^='/audit/judge/']").first
    pages.append(judge.get_attribute("href"))
    found = {}
    for path in pages:
        _ready(page, arena_server + path)
        if "perturbations" not in path:  # no perturbation audit was run: no chart there
            # The audit's charts draw with the whole bundle (scattergl too): every one.
            plots = page.locator(".audit-charts .plot")
            assert plots.count() == page.locator(".audit-charts .plot[data-drawn]").count()
            assert page.locator(".audit-charts .plot .main-svg").count() >= 1, path
        if violations := axe_violations(page):
            found[path] = violations
    assert found == {}, describe(found)
    assert errors == []


def _focus_ring(page) -> dict:
    return page.evaluate(
        """() => {
            const el = document.activeElement, s = getComputedStyle(el);
            return { matches: el.matches(":focus-visible"), style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
        }"""
    )


def _tab_to(page, selector, limit=60):
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(sel) => document.activeElement.matches(sel)", selector):
            ring = _focus_ring(page)
            assert ring["matches"] and ring["style"] != "none" and ring["width"] >= 2, ring
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_vote_from_the_keyboard_alone(arena_server, page):
    page.goto(arena_server + "/battle/")
    expect(page.locator(".answer")).to_have_count(2)
    # The first Tab shows the skip link, which moves the focus to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    expect(page.get_by_role("link", name="Skip to content")).to_be_in_viewport()
    # Tab to the button and press it (the letter shortcuts are not used).
    _tab_to(page, "#vote-pair button[data-winner='b']")
    page.keyboard.press("Enter")
    expect(page.locator("#vote-result")).to_contain_text("You preferred")
    # The focus moves to "Next battle": Space takes the next battle.
    expect(page.locator("#next-battle")).to_be_focused()
    page.keyboard.press("Space")
    expect(page.locator("#after-vote")).to_be_hidden()
    expect(page.locator("#vote-pair")).to_be_visible()


def test_the_leaderboard_filters_work_from_the_keyboard(arena_server, page):
    page.goto(arena_server + "/?set=e2e-arena&by=humans")
    expect(page.locator("#board tbody tr[data-model]").first).to_be_visible()
    _tab_to(page, "select[name=by]")
    # An arrow key moves through the options without leaving the page ...
    page.keyboard.press("ArrowDown")
    chosen = page.locator("select[name=by]").input_value()
    assert chosen != "humans"
    page.wait_for_timeout(300)
    assert "by=humans" in page.url
    # ... and Enter applies the choice.
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert f"by={chosen}" in page.url
    expect(page.locator("select[name=by]")).to_have_value(chosen)
    # The prompt-set select, then the Show button, from the keyboard: a new set starts
    # from its own default board.
    _tab_to(page, "select[name=set]")
    page.keyboard.press("ArrowDown")
    assert page.locator("select[name=set]").input_value() == "e2e-audit"
    _tab_to(page, "#board-show")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "set=e2e-audit" in page.url
    expect(page.locator("#board tbody tr[data-model]").first).to_be_visible(timeout=15000)
    # A choice made with the mouse still applies at once.
    with page.expect_navigation():
        page.locator("select[name=set]").select_option("e2e-arena")
    assert "set=e2e-arena" in page.url


def test_no_page_scrolls_sideways_on_a_phone(arena_server, context_for):
    page = context_for("light", PHONE).new_page()
    wide, found = {}, {}
    pages = _public_pages(page, arena_server)
    log_in_as_staff(page, arena_server)
    judge = page.locator("a[href^='/audit/judge/']").first.get_attribute("href")
    for path in ("/audit/", "/audit/agreement/", "/audit/integrity/", "/audit/perturbations/"):
        pages[path] = arena_server + path + "?set=e2e-audit"
    pages["judge"] = arena_server + judge
    for name, url in pages.items():
        _ready(page, url)
        measured = overflow(page)
        if measured["scrollWidth"] > measured["clientWidth"]:
            wide[name] = measured
        # A table too wide for the phone scrolls in a region the keyboard can reach.
        if violations := axe_violations(page):
            found[name] = violations
    assert wide == {}
    assert found == {}, describe(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_colours_follow_the_system_scheme_charts_included(arena_server, context_for, scheme):
    page = context_for(scheme).new_page()
    _ready(page, arena_server + "/?set=e2e-arena&by=humans")
    colours = page.evaluate(
        """() => {
            const c = (el, p) => getComputedStyle(el)[p];
            const card = document.querySelector(".card");
            return { body: c(document.body, "backgroundColor"), card: c(card, "backgroundColor"),
                     text: c(document.body, "color") };
        }"""
    )
    assert colours["body"] == BACKGROUND[scheme]
    assert colours["card"] == SURFACE[scheme]
    assert _contrast(colours["text"], colours["body"]) >= 7
    # Each chart is drawn on the card's colour, its text readable on it (WCAG AA, 4.5:1),
    # its points and lines visible (3:1 for graphics).
    charts = page.evaluate(
        """() => [...document.querySelectorAll(".js-plotly-plot")].map((gd) => ({
            id: gd.id,
            paper: getComputedStyle(gd.querySelector(".main-svg")).backgroundColor,
            texts: [...gd.querySelectorAll(".xtick text, .ytick text, .gtitle, .ytitle, .legendtext")]
                .map((t) => getComputedStyle(t).fill),
            marks: [...gd.querySelectorAll(".scatterlayer .point, .scatterlayer .js-line")]
                .map((m) => (m.classList.contains("point") ? getComputedStyle(m).fill : getComputedStyle(m).stroke)),
        }))"""
    )
    assert len(charts) == 4
    for chart in charts:
        assert chart["paper"] == SURFACE[scheme], chart["id"]
        assert chart["texts"], chart["id"]
        for fill in chart["texts"]:
            assert _contrast(fill, chart["paper"]) >= 4.5, (chart["id"], fill)
        for colour in chart["marks"]:
            assert _contrast(colour, chart["paper"]) >= 3, (chart["id"], colour)


def _contrast(one: str, two: str) -> float:
    """WCAG 2 contrast ratio of two CSS rgb()/rgba() colours."""

    def luminance(css):
        r, g, b = (float(v) / 255 for v in re.findall(r"[\d.]+", css)[:3])
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(one), luminance(two)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_charts_follow_a_switch_of_the_system_scheme_without_reload(arena_server, page):
    _ready(page, arena_server + "/?set=e2e-arena&by=humans")
    paper = "getComputedStyle(document.querySelector('#chart-ci .main-svg')).backgroundColor"
    assert page.evaluate(paper) == SURFACE["light"]
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(f"{paper} === {SURFACE['dark']!r}")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND["dark"]
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1


# Each table's first data row can be seen: a sticky header must not sit on top of it
# (inside a scroll box, "top: 3rem" would push the header over the first rows).
FIRST_ROWS_HIDDEN = """
() => [...document.querySelectorAll("table.board")].flatMap((table) => {
  const row = table.tBodies[0] && table.tBodies[0].rows[0];
  if (!row || !row.offsetParent) return [];
  row.scrollIntoView({ block: "center" });
  const box = row.getBoundingClientRect();
  const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return row.contains(hit) ? [] : [(table.id || table.className) + ": " + (hit ? hit.outerHTML.slice(0, 80) : "nothing")];
})
"""


def test_no_table_header_covers_its_first_row(arena_server, context_for):
    page = context_for("light").new_page()
    pages = _public_pages(page, arena_server)
    log_in_as_staff(page, arena_server)
    pages["audit"] = arena_server + "/audit/?set=e2e-audit"
    covered = {}
    for name, url in pages.items():
        _ready(page, url)
        if hidden := page.evaluate(FIRST_ROWS_HIDDEN):
            covered[name] = hidden
    assert covered == {}
