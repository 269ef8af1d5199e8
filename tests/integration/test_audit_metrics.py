"""The rest of a judge's metrics at page level: repeats, transitivity, TrustJudge's
score-vs-pairwise inconsistency, self- and family-preference.

Expected values are the pure functions on the arrays the test drew.
"""

import numpy as np
import pytest
from django.conf import settings
from scipy.special import expit

from arena.importers.loader import import_records
from arena.importers.records import JudgmentRecord, PromptRecord
from arena.models import Contestant, EvaluationRun, Judge, Match, PromptSet
from judges.audit_metrics import (
    MISSING,
    krippendorff_alpha,
    repeat_stability,
    score_pairwise_inconsistency,
    self_preference,
    transitivity_violations,
    verdict_score,
)

pytestmark = pytest.mark.django_db
LETTER = {0: "a", 1: "b"}


def _judge_page(staff, name, prompt_set):
    judge = Judge.objects.get(name=name)
    response = staff.get(f"/audit/judge/{judge.id}/", {"set": prompt_set})
    assert response.status_code == 200
    return response.context["report"]


def _same(cell, est):
    assert cell["n"] == est.n
    for key in ("value", "low", "high"):
        assert cell[key] == pytest.approx(getattr(est, key), abs=1e-12), key


def test_repeat_stability_is_the_mean_modal_share_over_re_runs(staff):
    rng = np.random.default_rng(0)
    n, repeats = 80, 4
    # Slot-terms verdicts of each re-run; shown in slot order, so slot = answer terms.
    stable = rng.random(n) < 0.7
    first = rng.integers(0, 2, n)
    drawn = np.where(stable[:, None], first[:, None], rng.integers(0, 2, (n, repeats)))
    records = [
        JudgmentRecord(
            match_id=f"m{k}",
            contestants=("x", "y"),
            winner=LETTER[int(drawn[k, r])],
            judge="j",
            repeat=r,
        )
        for k in range(n)
        for r in range(repeats)
    ]
    import_records(records, prompt_set="rep", source="t")
    report = _judge_page(staff, "j", "rep")
    expected = repeat_stability(drawn, n_boot=settings.ARENA_BOOTSTRAP_ROUNDS)
    _same(report["cells"]["stability"], expected)


def test_a_repeat_run_counts_for_stability_and_nothing_else(staff):
    rng = np.random.default_rng(4)
    n, repeats = 50, 3
    base = rng.integers(0, 2, n)
    drawn = np.where(rng.random((n, repeats)) < 0.8, base[:, None], 1 - base[:, None])
    records = [
        JudgmentRecord(
            match_id=f"b{k}", contestants=("x", "y"), winner=LETTER[int(base[k])], judge="j"
        )
        for k in range(n)
    ]
    records += [
        JudgmentRecord(
            match_id=f"r{k}",
            contestants=("x", "y"),
            winner=LETTER[int(drawn[k, r])],
            judge="j",
            repeat=r,
        )
        for k in range(n)
        for r in range(repeats)
    ]
    import_records(records, prompt_set="reprun", source="t")
    run = EvaluationRun.objects.create(
        name="repeats",
        prompt_set=PromptSet.objects.get(slug="reprun"),
        judge=Judge.objects.get(name="j"),
        tag="repeat",
    )
    Match.objects.filter(external_id__startswith="r").update(run=run)
    report = _judge_page(staff, "j", "reprun")
    _same(
        report["cells"]["stability"],
        repeat_stability(drawn, n_boot=settings.ARENA_BOOTSTRAP_ROUNDS),
    )
    assert report["n_judgments"] == n  # the repeat run's verdicts are not counted twice


def test_transitivity_counts_cycles_among_answers_to_one_prompt(staff):
    rng = np.random.default_rng(1)
    models = ("m1", "m2", "m3", "m4")
    records, group, i, j, verdicts = [], [], [], [], []
    for p in range(40):
        records.append(PromptRecord(external_id=f"p{p}", text="q"))
        for a in range(4):
            for b in range(a + 1, 4):
                v = int(rng.random() < 0.5)
                records.append(
                    JudgmentRecord(
                        match_id=f"p{p}-{a}{b}",
                        contestants=(models[a], models[b]),
                        winner=LETTER[v],
                        judge="j",
                        prompt_id=f"p{p}",
                    )
                )
                group.append(p), i.append(a), j.append(b), verdicts.append(v)
    import_records(records, prompt_set="cyc", source="t")
    report = _judge_page(staff, "j", "cyc")
    expected = transitivity_violations(
        group, i, j, verdicts, n_boot=settings.ARENA_BOOTSTRAP_ROUNDS
    )
    assert expected.n_cycles > 0
    _same(report["cells"]["cycles"], expected.cycle_share)
    chart = {c["key"]: c for c in report["charts"]}["stability"]
    row = next(r for r in chart["rows"] if r["label"].startswith("3-cycles"))
    assert row["value"] == pytest.approx(expected.cycle_share.value)


def test_score_vs_pairwise_compares_single_grades_with_the_pair_verdict(staff):
    rng = np.random.default_rng(2)
    n = 60
    records = [PromptRecord(external_id=f"p{k}", text="q") for k in range(n)]
    score_x = rng.integers(1, 11, n).astype(float)
    score_y = rng.integers(1, 11, n).astype(float)
    verdict = np.where(
        rng.random(n) < 0.8, np.where(score_x >= score_y, 0, 1), rng.integers(0, 2, n)
    )
    for k in range(n):
        pid = f"p{k}"
        records.append(
            JudgmentRecord(
                match_id=f"pair{k}",
                contestants=("x", "y"),
                winner=LETTER[int(verdict[k])],
                judge="j",
                prompt_id=pid,
            )
        )
        # Single-answer grading: the graded answer sits in slot 0.
        records.append(
            JudgmentRecord(
                match_id=f"sx{k}",
                contestants=("x", "y"),
                kind="score",
                score=score_x[k],
                judge="j",
                prompt_id=pid,
            )
        )
        records.append(
            JudgmentRecord(
                match_id=f"sy{k}",
                contestants=("y", "x"),
                kind="score",
                score=score_y[k],
                judge="j",
                prompt_id=pid,
            )
        )
    import_records(records, prompt_set="trust", source="t")
    report = _judge_page(staff, "j", "trust")
    expected = score_pairwise_inconsistency(score_x, score_y, verdict)
    _same(report["cells"]["score_conflict"], expected.conflict)
    rows = {
        r["label"]: r for r in {c["key"]: c for c in report["charts"]}["score-pairwise"]["rows"]
    }
    assert rows["reversal"]["value"] == pytest.approx(expected.reversal.value)
    assert rows["reversal"]["n"] == expected.reversal.n


def test_self_and_family_preference_against_humans_on_the_same_pairs(staff):
    rng = np.random.default_rng(3)
    models = ("selfie", "other1", "other2", "sibling")
    quality = np.array([0.0, 0.2, -0.2, 0.1])
    n = 600
    a = rng.integers(0, 4, n)
    b = (a + rng.integers(1, 4, n)) % 4
    p_a = expit(quality[a] - quality[b])
    human = np.where(rng.random(n) < p_a, 0, 1)
    judge = np.where(rng.random(n) < p_a, 0, 1)
    judge = np.where((a == 0) & (rng.random(n) < 0.5), 0, judge)  # favours its own answers
    judge = np.where((b == 0) & (rng.random(n) < 0.5), 1, judge)
    records = []
    for k in range(n):
        pair = (models[a[k]], models[b[k]])
        records.append(
            JudgmentRecord(
                match_id=f"m{k}", contestants=pair, winner=LETTER[int(human[k])], voter="h"
            )
        )
        records.append(
            JudgmentRecord(
                match_id=f"m{k}", contestants=pair, winner=LETTER[int(judge[k])], judge="selfie"
            )
        )
    import_records(records, prompt_set="selfpref", source="t")
    Judge.objects.filter(name="selfie").update(family="fam")
    Contestant.objects.filter(name__in=["selfie", "sibling"]).update(family="fam")
    report = _judge_page(staff, "selfie", "selfpref")
    boot = settings.ARENA_BOOTSTRAP_ROUNDS
    names = np.array(models)
    families = np.array(["fam", "", "", "fam"])
    own = self_preference(
        verdict_score(judge), verdict_score(human), names[a], names[b], "selfie", n_boot=boot
    )
    fam = self_preference(
        verdict_score(judge), verdict_score(human), families[a], families[b], "fam", n_boot=boot
    )
    _same(report["cells"]["self"], own.difference)
    _same(report["cells"]["family"], fam.difference)
    assert own.difference.low > 0  # the injected preference is found


def test_a_single_fixed_order_leaves_both_position_metrics_empty(staff):
    records = [
        JudgmentRecord(match_id=f"m{k}", contestants=("x", "y"), winner="a", judge="j")
        for k in range(10)
    ]
    import_records(records, prompt_set="single", source="t")
    report = _judge_page(staff, "j", "single")
    assert report["cells"]["consistency"] is None
    assert report["first_slot"]["n"] == 0 and not report["flagged"]
    assert report["n_matches"] == 10


def test_alpha_over_many_arena_voters_equals_alpha_of_the_full_matrix(staff):
    # 40 voters, each voting on a few of 60 matches: alpha of the packed verdicts equals
    # alpha of the (matches x voters) matrix with gaps, since alpha ignores who voted.
    rng = np.random.default_rng(5)
    n, voters = 60, 40
    full = np.full((n, voters), MISSING)
    records = []
    for k in range(n):
        for v in rng.choice(voters, size=rng.integers(1, 5), replace=False):
            full[k, v] = rng.choice([0, 1, 2], p=[0.5, 0.35, 0.15])
            winner = {0: "a", 1: "b", 2: "tie"}[int(full[k, v])]
            records.append(
                JudgmentRecord(
                    match_id=f"m{k}", contestants=("x", "y"), winner=winner, voter=f"v{v}"
                )
            )
    import_records(records, prompt_set="crowd", source="t")
    response = staff.get("/audit/agreement/", {"set": "crowd"})
    groups = {
        r["label"]: r for c in response.context["charts"] if c["key"] == "groups" for r in c["rows"]
    }
    expected = krippendorff_alpha(full, "nominal", n_boot=0, missing=MISSING)
    assert groups["humans: Krippendorff's α"]["value"] == pytest.approx(expected.value, abs=1e-12)
    assert groups["humans: Krippendorff's α"]["n"] == expected.n
    assert response.context["report"]["n_humans"] == np.any(full != MISSING, axis=0).sum()


def test_annotators_labels_are_compared_apart_from_the_crowds_votes(staff):
    """Agreement with the annotators (their labels on a run's matches) is its own metric,
    never mixed into agreement with the crowd; the vote-integrity panel reads the crowd."""
    from judges.audit_reports import queries
    from judges.audit_reports.judge import overview_report
    from judges.audit_reports.jury import juror_records

    rng = np.random.default_rng(5)
    n = 40
    judge = rng.integers(0, 2, n)
    records = []
    for k in range(n):
        pair = ("alpha", "beta")
        records.append(
            JudgmentRecord(
                match_id=f"m{k}", contestants=pair, winner=LETTER[int(judge[k])], judge="j"
            )
        )
        # the crowd agrees with the judge on the first half, the annotator never does on
        # the second half (those matches become a run's, their people's verdicts labels)
        person, winner = ("crowd", judge[k]) if k < n // 2 else ("annotator-1", 1 - judge[k])
        records.append(
            JudgmentRecord(
                match_id=f"m{k}", contestants=pair, winner=LETTER[int(winner)], voter=person
            )
        )
    import_records(records, prompt_set="labelled", source="t")
    run = EvaluationRun.objects.create(
        name="r",
        prompt_set=PromptSet.objects.get(slug="labelled"),
        judge=Judge.objects.get(name="j"),
    )
    labelled = [f"m{k}" for k in range(n // 2, n)]
    Match.objects.filter(external_id__in=labelled).update(origin=Match.Origin.RUN, run=run)

    cells = _judge_page(staff, "j", "labelled")["cells"]
    assert (cells["agreement"]["value"], cells["agreement"]["n"]) == (1.0, n // 2)
    annotated = cells["annotator_agreement"]
    assert (annotated["value"], annotated["n"]) == (0.0, n // 2)
    assert cells["annotator_kappa"]["n"] == n // 2
    overview = overview_report("labelled")
    assert (overview["n_humans"], overview["n_annotated"]) == (n // 2, n // 2)

    crowd = queries.load_verdicts("labelled", who="humans")
    labels = queries.load_verdicts("labelled", who="annotators")
    assert len(crowd) == len(labels) == n // 2
    assert not crowd.annotation.any() and labels.annotation.all()
    assert len(np.unique(crowd.voter)) == len(np.unique(labels.voter)) == 1
    assert crowd.voter[0] != labels.voter[0]
    everything = queries.load_verdicts("labelled")
    assert int(everything.annotation.sum()) == n // 2 and len(everything) == 2 * n

    judge_id = [Judge.objects.get(name="j").pk]
    assert [x.tolist() for x in juror_records("labelled", judge_id, "humans")] == [[20], [20]]
    assert [x.tolist() for x in juror_records("labelled", judge_id, "annotators")] == [[0], [20]]

    agreement = staff.get("/audit/agreement/", {"set": "labelled"})
    assert agreement.status_code == 200
    (heatmap,) = [c for c in agreement.context["report"]["charts"] if c["key"] == "kappa-judges"]
    assert heatmap["options"]["labels"][1:] == ["human majority", "annotator majority"]
