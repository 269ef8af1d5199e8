"""Judge audit pages on simulated judges: the page's numbers are the pure metrics' numbers.

Every expected value is recomputed from the arrays the simulation drew (not from the
database), with the pure functions of ``judges.audit_metrics`` and the same bootstrap settings.
"""

import csv
import io

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord
from arena.models import Judge, Judgment
from judges.audit_metrics import (
    MISSING,
    TIE,
    B,
    cohen_kappa,
    combine_orders,
    first_slot_win_rate,
    human_majority,
    longer_wins,
    position_consistency,
    position_preference,
    raw_agreement,
)
from tests.integration.audit_sim import simulate

pytestmark = pytest.mark.django_db


def _close(page: dict | None, est, tol=1e-12):
    """A page cell equals an Estimate (value, interval, n)."""
    assert page is not None
    assert page["n"] == est.n
    for key in ("value", "low", "high"):
        expected = getattr(est, key)
        if np.isnan(expected):
            assert page[key] is None
        else:
            assert page[key] == pytest.approx(expected, abs=tol), key


def _row(response, name: str) -> dict:
    rows = [r for r in response.context["report"]["judges"] if r["judge"].startswith(name + " [")]
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("design", ["both", "random"])
def test_it_flags_a_judge_with_first_slot_preference_and_not_a_fair_one(staff, design):
    sim = simulate(n=300, design=design, seed=4)
    sim.store()
    response = staff.get("/audit/", {"set": "sim"})
    assert response.status_code == 200
    biased, fair = _row(response, "biased"), _row(response, "fair")
    for name, row in (("biased", biased), ("fair", fair)):
        expected = first_slot_win_rate(sim.judges[name]["slots"])
        _close(row["cells"]["first_slot"], expected.win_rate)
        assert row["flagged"] == expected.win_rate.excludes(0.5)
    assert biased["flagged"] and not fair["flagged"]
    assert 0.5 < biased["cells"]["first_slot"]["low"]
    assert fair["cells"]["first_slot"]["low"] < 0.5 < fair["cells"]["first_slot"]["high"]
    # The table marks the biased judge only.
    html = response.content.decode()
    biased_row = html.split(f'data-judge="{biased["judge_id"]}"')[1].split("</tr>")[0]
    fair_row = html.split(f'data-judge="{fair["judge_id"]}"')[1].split("</tr>")[0]
    assert "position bias" in biased_row and "position bias" not in fair_row
    # ... and so does each judge's own page.
    page = staff.get(f"/audit/judge/{biased['judge_id']}/", {"set": "sim"})
    assert b"Flagged: position bias" in page.content
    page = staff.get(f"/audit/judge/{fair['judge_id']}/", {"set": "sim"})
    assert b"No significant position bias" in page.content


def test_a_fixed_presentation_order_is_not_tested_for_position_bias(staff):
    # Answer A is always shown first and is usually the better one: the first slot wins
    # 80% of the time, but that says nothing about position (PandaLM's design).

    records = [
        JudgmentRecord(
            match_id=f"m{k}", contestants=("good", "bad"), winner="a" if k % 5 else "b", judge="j"
        )
        for k in range(100)
    ]
    import_records(records, prompt_set="fixed", source="t")
    response = staff.get("/audit/", {"set": "fixed"})
    row = _row(response, "j")
    assert row["cells"]["first_slot"] is None and not row["flagged"]
    page = staff.get(f"/audit/judge/{row['judge_id']}/", {"set": "fixed"})
    assert b"Position bias not testable" in page.content


def test_overview_numbers_equal_the_pure_metrics_on_the_same_arrays(staff):
    sim = simulate(n=200, seed=1)
    sim.store()
    response = staff.get("/audit/", {"set": "sim"})
    majority = human_majority(sim.humans)
    boot = settings.ARENA_BOOTSTRAP_ROUNDS
    for name, drawn in sim.judges.items():
        row = _row(response, name)
        o1, o2 = drawn["order1"], drawn["order2"]
        _close(row["cells"]["consistency"], position_consistency(o1, o2))
        # One verdict per match: both orders combined (PRP), in answer terms.
        combined = combine_orders(o1, o2)
        _close(row["cells"]["agreement"], raw_agreement(combined, majority, ties=True))
        _close(row["cells"]["agreement_no_ties"], raw_agreement(combined, majority, ties=False))
        _close(row["cells"]["kappa"], cohen_kappa(combined, majority, n_boot=boot))
        # Length bias compares judge and humans on the matches with a human majority.
        has = majority != MISSING
        la, lb = sim.lengths[has, 0], sim.lengths[has, 1]
        longer = longer_wins(combined[has], majority[has], la, lb, n_boot=boot)
        _close(row["cells"]["length"], longer.difference)
        assert row["n_judgments"] == 2 * 200 and row["n_matches"] == 200


def test_judge_page_charts_and_their_csv_carry_the_same_numbers(staff):
    sim = simulate(n=150, seed=2)
    sim.store()
    judge = Judge.objects.get(name="biased")
    response = staff.get(f"/audit/judge/{judge.id}/", {"set": "sim"})
    charts = {c["key"]: c for c in response.context["charts"]}
    assert {"position", "first-slot", "length", "agreement"} <= charts.keys()
    o1, o2 = sim.judges["biased"]["order1"], sim.judges["biased"]["order2"]
    preference = position_preference(o1, o2)
    position = {r["label"]: r for r in charts["position"]["rows"]}
    _close(position["consistent in both orders"], position_consistency(o1, o2))
    _close(position["primacy (inconsistent pairs)"], preference.primacy)
    _close(position["recency (inconsistent pairs)"], preference.recency)
    test = first_slot_win_rate(sim.judges["biased"]["slots"])
    (first,) = charts["first-slot"]["rows"]
    assert first["p_value"] == pytest.approx(test.p_value, rel=1e-12)
    assert (first["n_first"], first["n_second"]) == (test.n_first, test.n_second)
    # The chart's CSV link serves exactly the chart's rows.
    download = staff.get(charts["position"]["csv"])
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert [r["label"] for r in rows] == [r["label"] for r in charts["position"]["rows"]]
    for got, want in zip(rows, charts["position"]["rows"], strict=True):
        assert float(got["value"]) == pytest.approx(want["value"], rel=1e-12)
        assert float(got["low"]) == pytest.approx(want["low"], rel=1e-12)
        assert int(got["n"]) == want["n"]
    # Each chart is embedded for plotly and has its own CSV link in the page.
    html = response.content.decode()
    for key, chart in charts.items():
        assert f'id="chart-{key}"' in html
        assert chart["csv"].replace("&", "&amp;") in html
    assert 'id="audit-charts"' in html and "/static/vendor/plotly/plotly.min.js" in html


def test_the_category_filter_restricts_every_metric(staff):
    sim = simulate(n=200, seed=3)
    sim.store()
    response = staff.get("/audit/", {"set": "sim", "category": "math"})
    keep = sim.categories == "math"
    row = _row(response, "biased")
    drawn = sim.judges["biased"]
    _close(
        row["cells"]["consistency"],
        position_consistency(drawn["order1"][keep], drawn["order2"][keep]),
    )
    assert row["n_matches"] == int(keep.sum())


def test_parse_failures_count_as_invalid_and_failed_calls_are_left_out(staff):

    sim = simulate(n=60, seed=5, judges={"biased": 0.7})
    sim.store()
    judge = Judge.objects.get(name="biased")
    rows = Judgment.objects.filter(
        judge=judge, match__external_id__in=["m0", "m1"], presentation="1,0"
    )
    rows.update(status=Judgment.Status.PARSE_FAILED, winner=None)
    Judgment.objects.filter(judge=judge, match__external_id="m2", presentation="1,0").update(
        status=Judgment.Status.FAILED, winner=None
    )
    drawn = sim.judges["biased"]
    o2 = drawn["order2"].copy()
    o2[[0, 1]] = 4  # INVALID
    o2[2] = MISSING
    response = staff.get("/audit/", {"set": "sim"})
    _close(
        _row(response, "biased")["cells"]["consistency"], position_consistency(drawn["order1"], o2)
    )


def test_queries_do_not_grow_with_the_number_of_judgments(staff):
    counts = {}
    for n, seed in ((60, 0), (300, 1)):
        simulate(prompt_set=f"sim{n}", n=n, seed=seed).store()
        judge = Judge.objects.get(name="biased")
        urls = [
            f"/audit/?set=sim{n}",
            f"/audit/judge/{judge.id}/?set=sim{n}",
            f"/audit/agreement/?set=sim{n}",
            f"/audit/integrity/?set=sim{n}",
            f"/audit/perturbations/?set=sim{n}",
            f"/audit/overview/table.csv?set=sim{n}",
        ]
        for url in urls:
            with CaptureQueriesContext(connection) as queries:
                assert staff.get(url).status_code == 200
            counts.setdefault(url.split("?")[0], []).append(len(queries))
    for url, (small, large) in counts.items():
        assert small == large, (url, small, large)
        assert large <= 25, (url, large)


def test_every_page_stays_within_a_fixed_query_budget(staff, django_assert_max_num_queries):
    simulate(n=300, seed=0).store()  # 300 matches: 900 human votes, 1200 judge verdicts
    judge = Judge.objects.get(name="fair")
    for url in ("/audit/", f"/audit/judge/{judge.id}/", "/audit/agreement/", "/audit/integrity/"):
        with django_assert_max_num_queries(25):
            assert staff.get(url, {"set": "sim"}).status_code == 200


def test_reports_are_cached_until_a_judgment_arrives(staff):

    sim = simulate(n=40, seed=6)
    sim.store()
    first = staff.get("/audit/", {"set": "sim"}).context["report"]
    with CaptureQueriesContext(connection) as queries:
        again = staff.get("/audit/", {"set": "sim"}).context["report"]
    assert again == first
    assert not any("arena_judgment" in q["sql"] and "SUM" in q["sql"].upper() for q in queries)
    Judgment.objects.filter(judge__name="biased").first().delete()
    changed = staff.get("/audit/", {"set": "sim"}).context["report"]
    assert _n(changed, "biased") == _n(first, "biased") - 1


def _n(report, name):
    return next(r["n_judgments"] for r in report["judges"] if r["judge"].startswith(name))


def test_empty_states(staff):
    response = staff.get("/audit/")
    assert response.status_code == 200
    assert b"Nothing to audit yet" in response.content
    simulate(n=20, judges={}).store()  # humans only
    response = staff.get("/audit/", {"set": "sim"})
    assert b"No LLM judge verdicts" in response.content
    response = staff.get("/audit/perturbations/", {"set": "sim"})
    assert b'id="perturbations-empty"' in response.content


def test_ties_and_both_bad_agree_with_each_other(staff):
    # A judge answering "tie" where humans said "both bad" agrees with them.

    records = []
    for k in range(12):
        human = ["bothbad", "a", "b"][k % 3]
        judge = {"bothbad": "tie", "a": "a", "b": "a"}[human]
        for who in ({"voter": "h1"}, {"judge": "j"}):
            winner = human if "voter" in who else judge
            records.append(
                JudgmentRecord(match_id=f"m{k}", contestants=("x", "y"), winner=winner, **who)
            )
    import_records(records, prompt_set="ties", source="t")
    row = _row(staff.get("/audit/", {"set": "ties"}), "j")
    assert row["cells"]["agreement"]["value"] == pytest.approx(8 / 12)
    assert row["cells"]["agreement_no_ties"]["value"] == pytest.approx(4 / 8)
    # Both-bad is merged into tie before kappa (labels TIE, A, B on both sides).
    human = np.array([TIE, 0, B] * 4)
    judge = np.array([TIE, 0, 0] * 4)
    _close(row["cells"]["kappa"], cohen_kappa(judge, human, n_boot=settings.ARENA_BOOTSTRAP_ROUNDS))
