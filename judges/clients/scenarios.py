"""Built-in scenarios for the fake server (``demo`` and ``test``) and :func:`load_scenario`.

``demo``: twelve candidates with a clear spread of strengths (logit -1.8 .. +1.8) and
styles (terse to verbose, plain to markdown-heavy), in eight families, and three judges:
``judge-sharp`` (good: discriminating, little noise, no bias), ``judge-first`` (prefers
the first slot, P = 0.7 at equal quality, and its own family) and ``judge-verbose``
(rewards length and authority/refinement cues).

``test``: a few candidates with exact properties (twins of equal quality, no answer
noise), judges each with one bias, and models that fail in one way each.

``jury``: the demo's twelve candidates and a panel of three noisy jurors of other
families, each biased its own way (issue 15): ``juror-first`` favours the answer shown
first and its own family (atlas), ``juror-second`` the answer shown second and long
answers, ``juror-terse`` short answers and, less, the first slot: their biases differ in
direction, so a panel dilutes each of them.
"""

from __future__ import annotations

from pathlib import Path

from .simulation import Faults, JudgeBehaviour, Scenario, SimModel, Style


def demo() -> Scenario:
    """The demo scenario (see the module docstring)."""
    candidates = [
        # name, quality, family, mean words, headers, lists, bold
        ("atlas-70b", 1.8, "atlas", 320, 0.6, 0.5, 0.5),
        ("borealis-large", 1.4, "borealis", 420, 0.8, 0.7, 0.7),
        ("harbor-moe", 1.1, "harbor", 260, 0.3, 0.4, 0.3),
        ("cirrus-pro", 1.0, "cirrus", 180, 0.1, 0.2, 0.1),
        ("atlas-8b", 0.6, "atlas", 220, 0.4, 0.4, 0.3),
        ("dune-34b", 0.3, "dune", 300, 0.3, 0.5, 0.2),
        ("ember-chat", 0.0, "ember", 500, 0.9, 0.8, 0.9),
        ("borealis-mini", -0.2, "borealis", 260, 0.6, 0.6, 0.5),
        ("fjord-13b", -0.5, "fjord", 150, 0.1, 0.2, 0.1),
        ("cirrus-lite", -0.8, "cirrus", 120, 0.0, 0.1, 0.0),
        ("dune-7b", -1.2, "dune", 200, 0.2, 0.3, 0.1),
        ("glacier-3b", -1.8, "glacier", 100, 0.0, 0.1, 0.0),
    ]
    models = [
        SimModel(
            name,
            quality=q,
            family=family,
            style=Style(mean_words=words, headers=h, lists=lists, bold=bold),
            judge=JudgeBehaviour(noise=1.0, tie=0.2),
        )
        for name, q, family, words, h, lists, bold in candidates
    ]
    models += [
        SimModel(
            "judge-sharp",
            quality=1.5,
            family="oracle",
            style=Style(mean_words=250, headers=0.3, lists=0.4, bold=0.3),
            judge=JudgeBehaviour(discrimination=1.2, noise=0.3, tie=0.15),
        ),
        SimModel(
            "judge-first",
            quality=0.8,
            family="cirrus",
            style=Style(mean_words=200),
            judge=JudgeBehaviour(
                discrimination=0.8, position_first=0.7, self_preference=0.5, noise=0.5, tie=0.1
            ),
        ),
        SimModel(
            "judge-verbose",
            quality=0.5,
            family="ember",
            style=Style(mean_words=450, headers=0.8, lists=0.7, bold=0.8),
            judge=JudgeBehaviour(
                discrimination=0.8,
                length_bias=0.8,
                noise=0.5,
                tie=0.1,
                cue_bias={"authority": 0.5, "refinement": 0.4, "model_name": 0.3},
            ),
        ),
    ]
    return Scenario("demo", tuple(models), seed=0, answer_noise=0.4)


def test() -> Scenario:
    """The test scenario (see the module docstring)."""
    plain = Style(mean_words=120, headers=0.0, lists=0.0, bold=0.0)
    exact = JudgeBehaviour(noise=0.0, tie=0.0)
    models = [
        SimModel("alpha", quality=1.5, family="alpha", style=plain, judge=exact),
        SimModel("beta", quality=0.0, family="beta", style=plain, judge=exact),
        SimModel("gamma", quality=-1.5, family="gamma", style=plain, judge=exact),
        SimModel("twin-a", quality=0.0, family="twins", style=plain, judge=exact),
        SimModel("twin-b", quality=0.0, family="twins", style=plain, judge=exact),
        SimModel(
            "verbose", quality=0.0, family="verbose", style=Style(mean_words=600), judge=exact
        ),
        SimModel("judge-fair", judge=JudgeBehaviour()),
        SimModel("judge-first", judge=JudgeBehaviour(position_first=0.7)),
        SimModel("judge-long", judge=JudgeBehaviour(length_bias=2.0)),
        SimModel("judge-self", family="alpha", judge=JudgeBehaviour(self_preference=2.0)),
        SimModel("judge-ties", judge=JudgeBehaviour(tie=0.6)),
        SimModel("judge-cues", judge=JudgeBehaviour(cue_bias={"authority": 2.0})),
        SimModel("judge-noisy", judge=JudgeBehaviour(noise=1.0, tie=0.1)),
        SimModel("fault-429", faults=Faults(rate_429=1.0, retry_after_s=0.02)),
        SimModel("fault-500", faults=Faults(rate_500=1.0)),
        SimModel("fault-timeout", faults=Faults(rate_timeout=1.0, timeout_s=2.0)),
        SimModel("fault-garbage", faults=Faults(rate_garbage=1.0)),
        SimModel(
            "flaky",
            faults=Faults(script=("429", "500", "timeout"), retry_after_s=0.01, timeout_s=2.0),
        ),
        SimModel("slow", faults=Faults(latency_ms=50.0)),
    ]
    return Scenario("test", tuple(models), seed=0, answer_noise=0.0)


JURORS = ("juror-first", "juror-second", "juror-terse")


def jury() -> Scenario:
    """The jury scenario (see the module docstring): no juror is good alone."""
    candidates = [m for m in demo().models if not m.name.startswith("judge-")]
    jurors = [
        SimModel(
            "juror-first",
            family="atlas",
            judge=JudgeBehaviour(
                discrimination=1.0, position_first=0.70, self_preference=0.6, noise=1.2, tie=0.1
            ),
        ),
        SimModel(
            "juror-second",
            family="nimbus",
            judge=JudgeBehaviour(
                discrimination=1.0, position_first=0.32, length_bias=0.4, noise=1.2, tie=0.15
            ),
        ),
        SimModel(
            "juror-terse",
            family="fjord",
            judge=JudgeBehaviour(
                discrimination=1.0, position_first=0.60, length_bias=-0.4, noise=1.2, tie=0.05
            ),
        ),
    ]
    return Scenario("jury", tuple(candidates + jurors), seed=0, answer_noise=0.4)


SCENARIOS = {"demo": demo, "test": test, "jury": jury}


def load_scenario(name_or_path: str | Scenario) -> Scenario:
    """A built-in scenario by name (``demo``, ``test``) or one read from a JSON file."""
    if isinstance(name_or_path, Scenario):
        return name_or_path
    if name_or_path in SCENARIOS:
        return SCENARIOS[name_or_path]()
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        return Scenario.from_json(path.read_text())
    raise ValueError(
        f"unknown scenario {name_or_path!r}: use one of {sorted(SCENARIOS)} or a .json file"
    )
