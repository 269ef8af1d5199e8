"""An annotator works through their queue with the keyboard, in a real browser against the
real server (its embedded worker hands the assignments out), and never sees who wrote
what."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browsing import axe_violations, describe, watch_errors
from tests.e2e.campaign_seed import PASSWORD, STAFF_PASSWORD, STAFF_USER, USERNAME
from tests.e2e.conftest import in_server_db, private_server_env, serving
from tests.integration.campaign_world import MODELS

NAMES = re.compile("|".join(map(re.escape, MODELS)))


@pytest.fixture(scope="module")
def campaign_server(tmp_path_factory, browser_executable):
    var = tmp_path_factory.mktemp("arena-annotate")
    env = private_server_env(var)
    in_server_db(env, "from tests.e2e.campaign_seed import seed; seed()")
    with serving(env, var) as url:
        yield url


def test_an_annotator_works_through_the_queue_with_the_keyboard(campaign_server, browser, page):
    errors = watch_errors(page)
    bodies = []

    def on_response(response):
        try:
            bodies.append((response.url, response.text()))
        except Exception:  # redirects have no body
            pass

    page.on("response", on_response)
    page.goto(campaign_server + "/annotate/1/")
    expect(page).to_have_url(re.compile(r"/annotate/login/\?next="))
    page.locator("#id_username").focus()
    page.keyboard.type(USERNAME)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(campaign_server + "/annotate/1/")
    expect(page.locator("#guidelines strong")).to_have_text("correct")

    prompts = []
    for _ in range(4):
        expect(page.locator("#item")).to_be_visible()
        if not prompts:
            violations = axe_violations(page)
            assert violations == [], describe(violations)
        prompt = page.locator("#prompt-text").inner_text()
        assert prompt not in prompts
        prompts.append(prompt)
        k = page.locator(".answer").count()
        page.locator("body").focus()
        if k == 2:
            expect(page.locator("#vote-pair")).to_be_visible()
            page.keyboard.press("b")
        else:
            assert k == 3
            expect(page.locator("#vote-rank")).to_be_visible()
            page.keyboard.press("2")  # the second answer shown is the best
        expect(page.locator("#queue-counts")).to_contain_text(f"Answered: {len(prompts)}")
        if len(prompts) < 4:
            expect(page.locator("#prompt-text")).not_to_have_text(prompt)
    expect(page.locator("#queue-state")).to_have_text("Nothing left in your queue. Thank you!")
    expect(page.locator("#item")).to_be_hidden()
    assert sorted(prompts) == [f"Question {i}?" for i in range(4)]
    assert not NAMES.search(page.content())
    assert [(url, body[:200]) for url, body in bodies if NAMES.search(body)] == []
    assert errors == []

    # staff see everything: the progress page counts the four answers
    staff = browser.new_context().new_page()
    staff.goto(campaign_server + "/admin/login/?next=/campaigns/1/")
    staff.get_by_label("Username").fill(STAFF_USER)
    staff.get_by_label("Password").fill(STAFF_PASSWORD)
    staff.get_by_role("button", name="Log in").click()
    expect(staff.locator("#coverage-text")).to_contain_text("4 of 4 answers")
    expect(staff.locator("#annotators tbody tr")).to_have_count(1)
    violations = axe_violations(staff)
    assert violations == [], describe(violations)
    staff.context.close()
