"""Rubrics (issue 15): criteria checks, the criterion parsers, the weighted total, deciders,
and the simulated rubric judge and drafter read back by the real parsers."""

import numpy as np
import pytest

from arena.rubrics import (
    Criterion,
    deciders,
    grade_deciders,
    grade_totals,
    normalised_levels,
    parse_criteria,
    total_winner,
    total_winner_codes,
    verdict_codes,
    weighted_totals,
)
from judges import prompts
from judges.clients.judge import parse_reply
from judges.clients.simulation import JudgeBehaviour, Scenario, SimModel, Simulator
from judges.rubric_drafts import parse_draft
from judges.verdicts import (
    ParseFailure,
    RubricScores,
    RubricVerdict,
    SlotRubricVerdict,
    parse_rubric_pairwise,
    parse_rubric_scores,
    to_slots,
)

CRITERIA = [
    {
        "name": "correctness",
        "weight": 3,
        "description": "Right?",
        "levels": ["no", "partly", "yes"],
    },
    {"name": "helpfulness", "weight": 2, "description": "Useful?", "levels": ["no", "yes"]},
    {"name": "style", "weight": 1, "description": "Pleasant?", "levels": ["bad", "ok", "good"]},
]


def test_it_checks_criteria():
    parsed = parse_criteria(CRITERIA)
    assert [c.name for c in parsed] == ["correctness", "helpfulness", "style"]
    assert parsed[0] == Criterion("correctness", 3.0, "Right?", ("no", "partly", "yes"))
    bad = [
        ([], "1 to 12"),
        ([{**CRITERIA[0], "name": "Correct ness"}], "name"),
        ([CRITERIA[0], CRITERIA[0]], "used twice"),
        ([{**CRITERIA[0], "weight": 0}], "weight"),
        ([{**CRITERIA[0], "weight": True}], "weight"),
        ([{**CRITERIA[0], "weight": float("nan")}], "weight"),
        ([{**CRITERIA[0], "levels": ["only one"]}], "levels"),
        ([{**CRITERIA[0], "levels": ["a", ""]}], "levels"),
        (["correctness"], "expected an object"),
    ]
    for data, message in bad:
        with pytest.raises(ValueError, match=message):
            parse_criteria(data)


def test_it_parses_one_pairwise_verdict_per_criterion():
    reply = (
        "Correctness matters most here. A says correctness: [[B>A]] at first glance.\n\n"
        "**Correctness**: [[A>>B]]\n"
        "- helpfulness: [[A=B]]\n"
        "3. style - [[B>A]]\n"
    )
    verdict = parse_rubric_pairwise(reply, ["correctness", "helpfulness", "style"])
    assert isinstance(verdict, RubricVerdict)
    assert {n: v.label for n, v in verdict.criteria.items()} == {
        "correctness": "A>>B",
        "helpfulness": "A=B",
        "style": "B>A",
    }
    # shown swapped (slot 1 first): A is slot 1
    slots = to_slots(verdict, (1, 0))
    assert isinstance(slots, SlotRubricVerdict)
    assert {n: v.winner for n, v in slots.criteria.items()} == {
        "correctness": 1,
        "helpfulness": None,
        "style": 0,
    }


def test_a_missing_or_malformed_criterion_fails_the_reply():
    names = ["correctness", "style"]
    missing = parse_rubric_pairwise("correctness: [[A>B]]", names)
    assert isinstance(missing, ParseFailure) and "'style'" in missing.reason
    malformed = parse_rubric_pairwise("correctness: [[A>B]]\nstyle: [[A>>>B]]", names)
    assert isinstance(malformed, ParseFailure) and "not a verdict label" in malformed.reason
    assert isinstance(parse_rubric_pairwise("", names), ParseFailure)
    assert isinstance(parse_rubric_pairwise("correctness: [[A>B]]", []), ParseFailure)
    assert isinstance(parse_rubric_scores("correctness: [[3]]", {}), ParseFailure)


def test_it_parses_pointwise_levels_within_each_criterions_range():
    levels = {"correctness": 3, "helpfulness": 2}
    scores = parse_rubric_scores("correctness: [[3]]\nhelpfulness: [[1]]", levels)
    assert scores == RubricScores({"correctness": 3, "helpfulness": 1})
    high = parse_rubric_scores("correctness: [[3]]\nhelpfulness: [[3]]", levels)
    assert isinstance(high, ParseFailure) and "1..2" in high.reason


def test_the_weighted_total_follows_the_weights():
    names = ["correctness", "helpfulness", "style"]
    weights = [3, 2, 1]
    verdicts = [
        {"correctness": "a", "helpfulness": "b", "style": "b"},  # 3 - 2 - 1 = 0: tie
        {"correctness": "b", "helpfulness": "a", "style": "a"},  # -3 + 3 = 0: tie
        {"correctness": "a", "helpfulness": "tie", "style": "b"},  # (3 - 1) / 6
        {"correctness": "bothbad", "style": "bothbad"},  # all both bad
        {"style": "b"},  # only style given: its weight alone
        {},
    ]
    codes = verdict_codes(verdicts, names)
    totals = weighted_totals(codes, weights)
    np.testing.assert_allclose(totals[:5], [0.0, 0.0, 2 / 6, 0.0, -1.0])
    assert np.isnan(totals[5])
    assert total_winner_codes(codes, weights).tolist() == [2, 2, 0, 3, 1, -1]
    criteria = parse_criteria(CRITERIA)
    assert total_winner({"correctness": "a", "helpfulness": "b", "style": "b"}, criteria) == "tie"
    assert total_winner({"correctness": "b", "helpfulness": "a", "style": "tie"}, criteria) == "b"
    with pytest.raises(ValueError):
        total_winner({}, criteria)


def test_deciders_count_the_criteria_that_decided_a_win():
    names = ["correctness", "helpfulness", "style"]
    codes = verdict_codes(
        [
            {"correctness": "a", "helpfulness": "b", "style": "a"},  # 3-2+1 > 0: a wins
            {"correctness": "a", "helpfulness": "a", "style": "b"},  # 3+2-1 > 0: a wins
            {"correctness": "tie", "helpfulness": "tie", "style": "tie"},  # no winner
        ],
        names,
    )
    found = deciders(codes, [3, 2, 1], names)
    assert found.decisive == 2
    assert found.agreed.tolist() == [2, 1, 1]
    assert found.against.tolist() == [0, 1, 1]
    # row 1: without correctness -2+1 < 0 (pivotal), without style 3-2 > 0 (not pivotal)
    # row 2: without correctness 2-1 > 0, without helpfulness 3-1 > 0: none pivotal
    assert found.pivotal.tolist() == [1, 0, 0]


def test_a_pointwise_grade_is_the_weighted_mean_of_the_normalised_levels():
    criteria = parse_criteria(CRITERIA)  # weights 3, 2, 1; levels 3, 2, 3
    grades = [
        {"correctness": 3, "helpfulness": 2, "style": 3},  # all top: 1
        {"correctness": 1, "helpfulness": 1, "style": 1},  # all bottom: 0
        {"correctness": 2, "helpfulness": 2, "style": 1},  # (3 * .5 + 2 * 1 + 0) / 6
        {"style": 2},  # only style given: its level alone
        {"correctness": 4, "helpfulness": True},  # out of range / not a level: none given
        None,
    ]
    x = normalised_levels(grades, criteria)
    np.testing.assert_allclose(x[2], [0.5, 1.0, 0.0])
    totals = grade_totals(grades, criteria)
    np.testing.assert_allclose(totals[:4], [1.0, 0.0, 3.5 / 6, 0.5])
    assert np.isnan(totals[4:]).all()


def test_grade_deciders_weigh_level_differences():
    criteria = parse_criteria(CRITERIA)
    slot0 = [
        {"correctness": 3, "helpfulness": 1, "style": 1},  # 3*1 - 2*1 - 1*1 = 0: no winner
        {"correctness": 3, "helpfulness": 1, "style": 3},  # 3 - 2 + 1 > 0: a wins
        {"correctness": 2, "helpfulness": 2, "style": 3},  # 0 + 0 + 1 > 0: a wins on style
        {"correctness": 1, "helpfulness": 2, "style": 1},  # -3*.5 + 0 + 0 < 0: b wins
    ]
    slot1 = [
        {"correctness": 1, "helpfulness": 2, "style": 3},
        {"correctness": 1, "helpfulness": 2, "style": 1},
        {"correctness": 2, "helpfulness": 2, "style": 1},
        {"correctness": 2, "helpfulness": 2, "style": 1},
    ]
    found = grade_deciders(slot0, slot1, criteria)
    assert found.decisive == 3
    assert found.agreed.tolist() == [2, 0, 2]
    assert found.against.tolist() == [0, 1, 0]
    # row 2: without correctness -2+1 < 0 (pivotal), without style 3-2 > 0 (not);
    # row 3: style alone decided; row 4: correctness alone decided
    assert found.pivotal.tolist() == [2, 0, 1]
    # the same totals as the grades' own: G(a) - G(b) decides
    totals = grade_totals(slot0, criteria) - grade_totals(slot1, criteria)
    assert (np.round(totals, 9) != 0).sum() == found.decisive


def test_a_pointwise_rubric_reply_is_a_score_judgment_with_its_levels():
    from types import SimpleNamespace

    from judges.judging import _from_reply

    criteria = parse_criteria(CRITERIA)
    reply = SimpleNamespace(
        text="correctness: [[2]]\nhelpfulness: [[2]]\nstyle: [[1]]",
        logprobs=None,
        latency_ms=5,
        prompt_tokens=1,
        completion_tokens=1,
        cost=0.0,
        finish_reason="stop",
    )
    config = SimpleNamespace(mode="rubric_single")
    values = _from_reply(config, reply, (1, 0), criteria)
    assert values["kind"] == "score" and values["status"] == "ok"
    assert values["criteria"] == {"correctness": 2, "helpfulness": 2, "style": 1}
    assert values["score"] == pytest.approx(3.5 / 6)
    assert "winner" not in values
    assert values["verdict_label"] == "levels 2/2/1, total 0.58"
    cut = SimpleNamespace(**{**vars(reply), "text": "correctness: [[2]]"})
    failed = _from_reply(config, cut, (0, 1), criteria)
    assert failed["status"] == "parse_failed" and "helpfulness" in failed["error"]


def test_the_rubric_template_shows_the_rubric_and_needs_one():
    criteria = parse_criteria(CRITERIA)
    block = prompts.rubric_block(criteria)
    messages = prompts.render("rubric", "What is 2+2?", ["4", "5"], (1, 0), rubric=block)
    user = messages[-1]["content"]
    assert "1. correctness (weight 3): Right?" in user
    assert "Levels, lowest first: 1 = no; 2 = partly; 3 = yes" in user
    assert user.index("Assistant A's Answer|>\n5") < user.index("Assistant B's Answer|>\n4")
    with pytest.raises(ValueError, match="rubric"):
        prompts.render("rubric", "What is 2+2?", ["4", "5"])
    single = prompts.render("rubric_single", "What is 2+2?", ["4"], rubric=block)
    assert "[The Start of Assistant's Answer]\n4" in single[-1]["content"]


def _scenario(criteria_sharpness):
    judge = SimModel("judge", judge=JudgeBehaviour(discrimination=3.0, criteria=criteria_sharpness))
    return Scenario(
        "rubric",
        (SimModel("good", quality=2.0), SimModel("bad", quality=-2.0), judge),
        criterion_sd=0.0,
    )


def test_the_simulated_rubric_judge_answers_what_the_parser_reads():
    simulator = Simulator(_scenario({"style": 0.0}))
    criteria = parse_criteria(CRITERIA)
    question = "Explain photosynthesis in plants."
    good = simulator.generate(
        simulator.scenario.model("good"), [{"role": "user", "content": question}]
    )
    bad = simulator.generate(
        simulator.scenario.model("bad"), [{"role": "user", "content": question}]
    )
    block = prompts.rubric_block(criteria)
    wins = {c.name: 0 for c in criteria}
    for seed in range(40):
        messages = prompts.render("rubric", question, [good.text, bad.text], rubric=block)
        reply = simulator.chat({"model": "judge", "messages": messages, "seed": seed}, seed)
        verdict = parse_reply("rubric", reply.text, criteria=criteria)
        assert isinstance(verdict, RubricVerdict), reply.text
        for name, v in verdict.criteria.items():
            wins[name] += v.winner == "A"
    # sharp on correctness and helpfulness (discrimination 3 x 4 logits), blind on style
    assert wins["correctness"] >= 36 and wins["helpfulness"] >= 36
    assert 8 <= wins["style"] <= 32
    pointwise = prompts.render("rubric_single", question, [good.text], rubric=block)
    reply = simulator.chat({"model": "judge", "messages": pointwise, "seed": 1}, 0)
    levels = parse_reply("rubric_single", reply.text, criteria=criteria)
    assert isinstance(levels, RubricScores) and levels.levels["correctness"] == 3


def test_the_simulated_drafter_writes_a_rubric_the_draft_parser_accepts():
    simulator = Simulator(_scenario({}))
    messages = prompts.rubric_draft_messages("Explain photosynthesis in plants.")
    reply = simulator.chat({"model": "judge", "messages": messages}, 0)
    criteria = parse_draft(reply.text)
    names = [c.name for c in criteria]
    assert names[:3] == ["correctness", "helpfulness", "clarity"]
    assert names[3] == "photosynthesis-coverage"
    with pytest.raises(ValueError, match="no JSON rubric"):
        parse_draft("I would judge correctness and style.")
    with pytest.raises(ValueError, match="weight"):
        parse_draft('{"criteria": [{"name": "x", "weight": -1, "levels": ["a", "b"]}]}')
