"""Simulated candidate models and LLM judges with known behaviour (no HTTP here).

The fake server (:mod:`judges.clients.fake_server`) wraps a :class:`Simulator`; tests
and benches may also call it directly.

Candidates
----------
A candidate model answers any prompt deterministically (seeded by scenario seed, model and
prompt) with plausible text whose length and markdown (headers, lists, bold) follow its
:class:`Style`. Each answer has a latent quality in logit units::

    q(model, prompt) = model.quality + answer_noise * z(model, prompt),  z ~ N(0, 1)

The simulator reads an answer's quality back by (1) the digest of every answer it wrote,
(2) regenerating every candidate's answer to the judged question (so it still knows after
a restart), (3) for text it never wrote (real PandaLM outputs ...), a deterministic
``unknown_quality_sd * z(text)``. Cues added by :mod:`judges.perturbations` are stripped
first, so a padded answer keeps its quality and gains only its length.

Judges
------
A judge parses the prompts rendered by :mod:`judges.prompts` (it finds the answers by their
``<|The Start of Assistant A's Answer|>`` / ``[The Start of Assistant A's Answer]``
delimiters) and, for a pair shown as (A, B), computes::

    logit = d (q_A - q_B) + logit(position_first)
            + length_bias (len_A - len_B) / length_scale
            + self_preference (own_A - own_B) + sum_c cue_bias_c (cue_A,c - cue_B,c)
            + noise * eps,   eps ~ N(0, 1)
    p = sigmoid(logit)
    P(tie) = tie * 4 p (1 - p);   P(A) = p (1 - P(tie));   P(B) = (1 - p)(1 - P(tie))

so with equal answers and no other bias ``P(A wins | not a tie) = position_first``.
Arena-Hard labels split a win into significant / slight with ``P(A>>B | A) = p**3``
(``(1-p)**3`` for B). K-wise rankings are Plackett-Luce samples with utilities
``d q_i + length + self + cues + noise`` (+ ``logit(position_first)`` for the first slot);
1-10 ratings are a discretised normal around ``5.5 + 1.5 (d q + ...)`` with sd 0.8; a
prompt asking for "a scale of 1 to N" (1-100: TrustJudge's scale) gets the same rule
stretched to 1..N (mean ``1 + (N - 1)/9 (4.5 + 1.5 (d q + ...))``, sd ``0.8 (N - 1)/9``).
Every reply can carry logprobs: the verdict token's ``top_logprobs`` are exactly this
distribution, so :func:`judges.verdicts.verdict_probabilities` recovers it.

Rubric judges (issue 15): a prompt with a ``<|Rubric|>`` block is judged criterion by
criterion. An answer's quality on criterion ``c`` is its quality plus a per-(answer,
criterion) offset ``criterion_sd * z(text, c)``, and the judge's discrimination on it is
``d * criteria.get(c, 1)`` (:attr:`JudgeBehaviour.criteria`): a judge can be sharp on
correctness and blind on style. Each criterion's label is drawn as a pairwise verdict with
every other term unchanged; pointwise rubric grades are the level nearest
``(L + 1) / 2 + (d_c q_c) (L - 1) / 4`` with a noise of sd 0.6 levels. A rubric drafting
request (``<|Rubric Draft Request|>``, :data:`judges.prompts.RUBRIC_DRAFT_MARKER`) gets a
JSON rubric built from the prompt's keywords.

Randomness is a pure function of (scenario seed, model, messages, request seed) when
``temperature == 0`` or a ``seed`` is sent (repeat calls agree), and of a per-model call
counter otherwise (repeats vary).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache

import numpy as np

from judges import perturbations
from judges.prompts import RUBRIC_DRAFT_MARKER

# --- scenario ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How a candidate writes: mean length in words and markdown propensities (0-1)."""

    mean_words: int = 180
    headers: float = 0.2
    lists: float = 0.3
    bold: float = 0.2


@dataclass(frozen=True)
class JudgeBehaviour:
    """How a model judges (see the module docstring for the formula).

    Attributes
    ----------
    discrimination : float
        Multiplies the quality difference (0 = a coin-flipping judge).
    position_first : float
        P(first answer wins | equal quality, no tie, no other bias); 0.5 is unbiased.
    length_bias : float
        Logit added per ``length_scale`` characters the first answer is longer.
    length_scale : float
        Characters.
    self_preference : float
        Logit added for an answer written by a model of the judge's own family.
    noise : float
        Standard deviation of the per-call logit noise.
    tie : float
        Tie propensity: the tie probability at p = 0.5.
    cue_bias : dict
        Logit per perturbation cue found in an answer (``padding``, ``authority``,
        ``model_name``, ``refinement``), e.g. ``{"authority": 0.5}``.
    criteria : dict
        Rubric criterion name -> multiplier of ``discrimination`` on that criterion
        (default 1), e.g. ``{"correctness": 1.5, "style": 0.1}``.
    """

    discrimination: float = 1.0
    position_first: float = 0.5
    length_bias: float = 0.0
    length_scale: float = 1000.0
    self_preference: float = 0.0
    noise: float = 0.0
    tie: float = 0.0
    cue_bias: dict = field(default_factory=dict)
    criteria: dict = field(default_factory=dict)

    def __post_init__(self):
        if not 0.0 < self.position_first < 1.0:
            raise ValueError(f"position_first must be in (0, 1), got {self.position_first}")
        if not 0.0 <= self.tie <= 1.0:
            raise ValueError(f"tie must be in [0, 1], got {self.tie}")
        if self.noise < 0 or self.length_scale <= 0:
            raise ValueError("noise must be >= 0 and length_scale > 0")


@dataclass(frozen=True)
class Faults:
    """Injected failures of one model (or of every model without its own).

    Rates are per request and seeded; ``script`` fixes the outcomes of the first requests
    (``"ok"``, ``"429"``, ``"500"``, ``"timeout"``, ``"garbage"``) before the rates apply.
    ``timeout_s`` is how long a "timeout" request sleeps (make it longer than the client's
    timeout); ``latency_ms`` is added to every request.
    """

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0
    rate_garbage: float = 0.0
    latency_ms: float = 0.0
    retry_after_s: float = 1.0
    timeout_s: float = 30.0
    script: tuple[str, ...] = ()

    def __post_init__(self):
        total = self.rate_429 + self.rate_500 + self.rate_timeout + self.rate_garbage
        if min(self.rate_429, self.rate_500, self.rate_timeout, self.rate_garbage) < 0 or total > 1:
            raise ValueError(f"fault rates must be >= 0 and sum to <= 1, got {total}")
        bad = set(self.script) - set(OUTCOMES)
        if bad:
            raise ValueError(f"unknown scripted outcome {sorted(bad)[0]!r}; use {OUTCOMES}")


OUTCOMES = ("ok", "429", "500", "timeout", "garbage")


@dataclass(frozen=True)
class SimModel:
    """A simulated model: a candidate (quality, family, style) that can also judge."""

    name: str
    quality: float = 0.0
    family: str = ""
    style: Style = field(default_factory=Style)
    judge: JudgeBehaviour = field(default_factory=JudgeBehaviour)
    faults: Faults | None = None


@dataclass(frozen=True)
class Scenario:
    """Every simulated model, global faults and the seed.

    Attributes
    ----------
    answer_noise : float
        Sd of the per-(model, prompt) quality variation.
    unknown_quality_sd : float
        Sd of the hash-derived quality of answers the simulator did not write.
    api_key : str or None
        When set, requests must send ``Authorization: Bearer <api_key>`` (401 otherwise).
    """

    name: str
    models: tuple[SimModel, ...]
    seed: int = 0
    answer_noise: float = 0.3
    unknown_quality_sd: float = 1.0
    criterion_sd: float = 0.5
    faults: Faults = field(default_factory=Faults)
    api_key: str | None = None

    def __post_init__(self):
        names = [m.name for m in self.models]
        if len(names) != len(set(names)):
            raise ValueError("scenario model names must be unique")

    def model(self, name: str) -> SimModel | None:
        return self._by_name().get(name)

    def _by_name(self) -> dict[str, SimModel]:
        cache = self.__dict__.get("_index")
        if cache is None:
            cache = {m.name: m for m in self.models}
            object.__setattr__(self, "_index", cache)
        return cache

    def faults_for(self, name: str) -> Faults:
        model = self.model(name)
        return model.faults if model is not None and model.faults is not None else self.faults

    def with_faults(self, faults: Faults, models: tuple[str, ...] | None = None) -> Scenario:
        """A copy with ``faults`` for every model (or only the named ones)."""
        if models is None:
            return replace(self, faults=faults)
        return replace(
            self,
            models=tuple(replace(m, faults=faults) if m.name in models else m for m in self.models),
        )

    # JSON
    def to_dict(self) -> dict:
        data = asdict(self)
        data["models"] = [asdict(m) for m in self.models]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Scenario:
        def build(kind, value):
            return kind(**{f.name: value[f.name] for f in fields(kind) if f.name in value})

        models = []
        for m in data.get("models", ()):
            m = dict(m)
            m["style"] = build(Style, m.get("style") or {})
            m["judge"] = build(JudgeBehaviour, m.get("judge") or {})
            if m.get("faults") is not None:
                m["faults"] = _faults(m["faults"])
            models.append(build(SimModel, m))
        top = {k: v for k, v in data.items() if k not in ("models", "faults")}
        top["models"] = tuple(models)
        top["faults"] = _faults(data.get("faults") or {})
        return build(cls, top)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scenario:
        return cls.from_dict(json.loads(text))


def _faults(data: dict) -> Faults:
    data = dict(data)
    data["script"] = tuple(data.get("script") or ())
    return Faults(**{f.name: data[f.name] for f in fields(Faults) if f.name in data})


# --- seeded randomness -------------------------------------------------------------------
def stable_seed(*parts) -> int:
    """A 64-bit seed from the sha256 of the parts (stable across processes)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def rng_for(*parts) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*parts))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# --- tokens ------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+$")


def tokenize(text: str) -> list[str]:
    """Split text into tokens that concatenate back to it (leading spaces attached)."""
    return _TOKEN.findall(text)


def count_prompt_tokens(messages) -> int:
    """Prompt tokens as the server reports them: tokens of every content + 4 per message."""
    return sum(len(tokenize(str(m.get("content") or ""))) + 4 for m in messages)


# --- candidate answers -------------------------------------------------------------------
_STOPWORDS = set(
    """about above after again against because been before being below between both could
    does doing down during each from further have having here into itself just more most
    other over same should some such than that their them then there these they this those
    through under until very what when where which while whom with would your yours please
    write explain give tell list describe make using
    """.split()
)
_SENTENCES = (
    "The main idea behind {a} is closely related to {b}.",
    "A practical way to approach {a} is to start with {b} and refine from there.",
    "When thinking about {a}, it helps to consider how {b} affects the outcome.",
    "Many people overlook the role of {a} in {b}.",
    "{A} can be understood as a balance between {b} and {c}.",
    "For example, applying {a} to {b} usually gives clearer results.",
    "It is worth checking the assumptions about {a} before drawing conclusions.",
    "One common mistake is to confuse {a} with {b}.",
    "In practice, {a} works best when it is combined with {b}.",
    "The evidence suggests that {a} matters more than {b} in most cases.",
    "Start by defining {a} precisely, then look at how it interacts with {b}.",
    "A simple rule of thumb is to keep {a} and {b} separate until the last step.",
    "If {a} changes, {b} and {c} usually need to be revisited as well.",
    "Experts often describe {a} in terms of {b}, which makes it easier to reason about.",
)
_ITEMS = (
    "{A}: keep it simple and measurable.",
    "{A}: compare it with {b} before deciding.",
    "{A}: the step most people get wrong.",
    "{A}: useful when {b} is limited.",
    "{A}: document it so that {b} stays consistent.",
    "{A}: revisit it after testing {b}.",
)
_CLOSINGS = (
    "In short, {a} is the key point to get right.",
    "Overall, focusing on {a} and {b} gives the best results.",
    "I hope this helps you with {a}.",
    "Let me know if you would like more detail on {a}.",
)


_GENERIC = (
    "the overall approach",
    "the main constraints",
    "each step",
    "the expected result",
    "the underlying assumptions",
    "the context",
    "common pitfalls",
    "the trade-offs",
)


def _keywords(prompt: str) -> list[str]:
    """The prompt's content words, then generic phrases so sentences vary."""
    words = re.findall(r"[A-Za-z][A-Za-z\-]{3,}", prompt.lower())
    seen, out = set(), []
    for w in words:
        if w not in _STOPWORDS and w not in seen:
            seen.add(w)
            out.append(w)
    return out[:12] + list(_GENERIC[: max(3, 8 - len(out))])


def _fill(template: str, rng: random.Random, kw: list[str], bold: float) -> str:
    a, b, c = rng.sample(kw, 3)
    if rng.random() < bold:
        a = f"**{a}**"
    a_cap = "**" + a[2:3].upper() + a[3:] if a.startswith("**") else a[:1].upper() + a[1:]
    return template.format(a=a, b=b, c=c, A=a_cap)


def generate_answer(model: SimModel, prompt: str, seed: int = 0) -> str:
    """The deterministic answer of candidate ``model`` to ``prompt`` (see module docstring)."""
    return _generate(model.name, model.style, prompt, seed)


@lru_cache(maxsize=8192)
def _generate(name: str, style: Style, prompt: str, seed: int) -> str:
    # random.Random, not numpy: dozens of scalar draws per answer, ~10x faster.
    rng = random.Random(stable_seed(seed, "answer", name, prompt))
    kw = _keywords(prompt)
    target = max(15, int(rng.lognormvariate(math.log(max(style.mean_words, 10)), 0.25)))
    blocks, words = [], 0
    if rng.random() < style.headers:
        blocks.append(f"## {kw[0].capitalize()}")
    blocks.append(_fill(rng.choice(_SENTENCES), rng, kw, style.bold))
    words += len(blocks[-1].split())
    while words < target:
        if rng.random() < style.headers * 0.5:
            blocks.append(f"### {rng.choice(kw).capitalize()}")
        if rng.random() < style.lists:
            items = [
                "- " + _fill(rng.choice(_ITEMS), rng, kw, style.bold)
                for _ in range(rng.randint(3, 5))
            ]
            block = "\n".join(items)
        else:
            block = " ".join(
                _fill(rng.choice(_SENTENCES), rng, kw, style.bold) for _ in range(rng.randint(2, 4))
            )
        blocks.append(block)
        words += len(block.split())
    blocks.append(_fill(rng.choice(_CLOSINGS), rng, kw, 0.0))
    return "\n\n".join(blocks)


def answer_quality(scenario: Scenario, model: SimModel, prompt: str) -> float:
    """``model.quality + answer_noise * z(model, prompt)``."""
    z = random.Random(stable_seed(scenario.seed, "quality", model.name, prompt)).gauss(0.0, 1.0)
    return float(model.quality + scenario.answer_noise * z)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.strip().encode()).digest()[:16]


@dataclass(frozen=True)
class AnswerInfo:
    """What the simulator knows about an answer shown to a judge."""

    quality: float
    model: str | None
    family: str | None
    length: int
    cues: frozenset


class AnswerBook:
    """Digest of every generated answer -> (model, quality); thread-safe, bounded."""

    def __init__(self, max_entries: int = 1_000_000):
        self._entries: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def add(self, text: str, model: str, quality: float) -> None:
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[_digest(text)] = (model, quality)

    def get(self, text: str) -> tuple[str, float] | None:
        with self._lock:
            return self._entries.get(_digest(text))


# --- judge prompts -----------------------------------------------------------------------
_ANSWER_PATTERNS = (
    re.compile(
        r"<\|The Start of Assistant ([A-Z])'s Answer\|>\n(.*?)\n<\|The End of Assistant \1's Answer\|>",
        re.S,
    ),
    re.compile(
        r"\[The Start of Assistant ([A-Z])'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]",
        re.S,
    ),
)
_SINGLE_ANSWER = re.compile(
    r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]", re.S
)
_RUBRIC = re.compile(r"<\|Rubric\|>\n(.*?)\n<\|End of Rubric\|>", re.S)
_RUBRIC_LINE = re.compile(
    r"^\d+\. ([a-z][a-z0-9_-]*) \(weight [^)]*\):.*\n\s+Levels[^:]*: (.*)$", re.M
)
_QUESTION_PATTERNS = (
    re.compile(
        r"<\|User Prompt\|>\n(.*?)\n\n(?:<\|The Start of|<\|Rubric\|>|<\|End of User Prompt\|>|\Z)",
        re.S,
    ),
    re.compile(r"\[User Question\]\n(.*?)\n\n\[The Start of", re.S),
    re.compile(r"\[Question\]\n(.*?)\n\n\[The Start of", re.S),
)
_REFERENCE = re.compile(
    r"(?:<\|The Start of Reference Answer\|>|\[The Start of Reference Answer\])\n(.*?)\n"
    r"(?:<\|The End of Reference Answer\|>|\[The End of Reference Answer\])",
    re.S,
)


@dataclass(frozen=True)
class JudgeTask:
    """A judge prompt understood: its format, question and answers in presentation order."""

    kind: str  # pairwise | pairwise_mtbench | listwise | single | rubric | rubric_single | draft
    question: str
    answers: tuple[str, ...]
    reference: str | None = None
    criteria: tuple[tuple[str, int], ...] = ()  # rubric: (name, number of levels), in order
    top_rating: int = 10  # single: ratings 1..top_rating


_SCALE = re.compile(r"scale of 1 to (\d+)")


def read_judge_prompt(messages) -> JudgeTask | None:
    """Find the format, question and answers in a rendered judge prompt; None if not one."""
    user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    if user is None:
        return None
    content = str(user.get("content") or "")
    everything = "\n".join(str(m.get("content") or "") for m in messages)
    question = next((m.group(1) for p in _QUESTION_PATTERNS if (m := p.search(content))), "")
    if RUBRIC_DRAFT_MARKER in everything:
        return JudgeTask("draft", question, ())
    reference = _REFERENCE.search(content)
    reference = reference.group(1) if reference else None
    single = _SINGLE_ANSWER.search(content)
    rubric = _RUBRIC.search(content)
    if rubric:
        criteria = tuple(
            (name, levels.count(" = ")) for name, levels in _RUBRIC_LINE.findall(rubric.group(1))
        )
        found = _ANSWER_PATTERNS[0].findall(content)
        if single:
            return JudgeTask("rubric_single", question, (single.group(1),), reference, criteria)
        if len(found) == 2 and [label for label, _ in found] == ["A", "B"]:
            return JudgeTask("rubric", question, tuple(t for _, t in found), reference, criteria)
        return None
    if single and ("[[rating]]" in everything or "Rating: [[" in everything):
        scale = _SCALE.search(everything)
        top = int(scale.group(1)) if scale and 2 <= int(scale.group(1)) <= 1000 else 10
        return JudgeTask("single", question, (single.group(1),), reference, top_rating=top)
    for pattern in _ANSWER_PATTERNS:
        found = pattern.findall(content)
        if len(found) >= 2:
            labels = [label for label, _ in found]
            if labels != [chr(ord("A") + i) for i in range(len(found))]:
                return None
            answers = tuple(text for _, text in found)
            if "final ranking" in everything.lower() or len(answers) > 2:
                kind = "listwise"
            elif "[[A>>B]]" in everything:
                kind = "pairwise"
            elif "[[C]]" in everything:
                kind = "pairwise_mtbench"
            else:
                kind = "pairwise"
            return JudgeTask(kind, question, answers, reference)
    return None


# --- the simulator -----------------------------------------------------------------------
@dataclass
class Reply:
    """A simulated completion: tokens (concatenating to the text) and verdict logprobs."""

    tokens: list[str]
    finish_reason: str = "stop"
    verdict_index: int | None = None  # token whose top_logprobs are the verdict distribution
    verdict_distribution: dict[str, float] | None = None
    kind: str = "generate"  # generate | judge
    verdict: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.tokens)


_ARENA_LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
_MT_LABELS = ("A", "B", "C")


class Simulator:
    """Answers chat requests for the models of a scenario (thread-safe).

    Parameters
    ----------
    scenario : Scenario
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.book = AnswerBook()
        self._counters: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    # counters -----------------------------------------------------------------------------
    def next_call(self, model: str) -> int:
        with self._lock:
            n = self._counters[model]
            self._counters[model] = n + 1
            return n

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()

    def fault_for(self, model: str, call_index: int) -> str:
        """The outcome of call ``call_index`` of ``model``: scripted, then seeded rates."""
        faults = self.scenario.faults_for(model)
        if call_index < len(faults.script):
            return faults.script[call_index]
        u = random.Random(stable_seed(self.scenario.seed, "fault", model, call_index)).random()
        for outcome, rate in (
            ("429", faults.rate_429),
            ("500", faults.rate_500),
            ("timeout", faults.rate_timeout),
            ("garbage", faults.rate_garbage),
        ):
            if u < rate:
                return outcome
            u -= rate
        return "ok"

    # candidates ---------------------------------------------------------------------------
    def generate(self, model: SimModel, messages, max_tokens: int | None = None) -> Reply:
        """A candidate answer to the last user message (registered for judges)."""
        prompt = _last_user(messages)
        text = generate_answer(model, prompt, self.scenario.seed)
        tokens = tokenize(text)
        finish = "stop"
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens, finish = tokens[:max_tokens], "length"
        self.book.add("".join(tokens), model.name, answer_quality(self.scenario, model, prompt))
        return Reply(tokens=tokens, finish_reason=finish)

    def answer_info(self, text: str, question: str) -> AnswerInfo:
        """Quality, author and cues of an answer shown to a judge (see module docstring)."""
        clean, cues = perturbations.detect_cues(text)
        length = len(text)
        found = self.book.get(clean)
        if found is None:
            for model in self.scenario.models:
                if generate_answer(model, question, self.scenario.seed).strip() == clean.strip():
                    found = (model.name, answer_quality(self.scenario, model, question))
                    break
        if found is None:
            z = random.Random(stable_seed(self.scenario.seed, "unknown", clean.strip())).gauss(
                0.0, 1.0
            )
            return AnswerInfo(float(self.scenario.unknown_quality_sd * z), None, None, length, cues)
        name, quality = found
        author = self.scenario.model(name)
        return AnswerInfo(quality, name, author.family if author else None, length, cues)

    # judges -------------------------------------------------------------------------------
    def _utility(self, judge: SimModel, info: AnswerInfo, eps: float) -> float:
        """Everything but position: d q + length/scale + self + cues + noise (as a level)."""
        b = judge.judge
        own = 1.0 if judge.family and info.family == judge.family else 0.0
        cues = sum(float(b.cue_bias.get(c, 0.0)) for c in info.cues)
        return (
            b.discrimination * info.quality
            + b.length_bias * info.length / b.length_scale
            + b.self_preference * own
            + cues
            + b.noise * eps
        )

    def pairwise_probabilities(
        self, judge: SimModel, infos, rng: np.random.Generator
    ) -> tuple[float, float, float]:
        """(P(A), P(B), P(tie)) for the pair (A, B) shown in this order."""
        b = judge.judge
        eps = rng.standard_normal(2)
        x = (
            self._utility(judge, infos[0], eps[0] / math.sqrt(2))
            - self._utility(judge, infos[1], eps[1] / math.sqrt(2))
            + logit(b.position_first)
        )
        p = sigmoid(x)
        tie = b.tie * 4.0 * p * (1.0 - p)
        return p * (1.0 - tie), (1.0 - p) * (1.0 - tie), tie

    def judge(self, judge: SimModel, task: JudgeTask, rng: np.random.Generator) -> Reply:
        """A judge reply to a parsed judge prompt."""
        infos = [self.answer_info(a, task.question) for a in task.answers]
        if task.kind in ("pairwise", "pairwise_mtbench"):
            p_a, p_b, p_tie = self.pairwise_probabilities(judge, infos, rng)
            p = p_a / max(p_a + p_b, 1e-12)
            if task.kind == "pairwise":
                strong_a, strong_b = p**3, (1.0 - p) ** 3
                dist = {
                    "A>>B": p_a * strong_a,
                    "A>B": p_a * (1 - strong_a),
                    "A=B": p_tie,
                    "B>A": p_b * (1 - strong_b),
                    "B>>A": p_b * strong_b,
                }
            else:
                dist = {"A": p_a, "B": p_b, "C": p_tie}
            label = _sample(dist, rng)
            return _verdict_reply(task, infos, label, dist, rng)
        if task.kind == "listwise":
            return self._rank(judge, task, infos, rng)
        if task.kind == "rubric":
            return self._rubric_pairwise(judge, task, infos, rng)
        if task.kind == "rubric_single":
            return self._rubric_levels(judge, task, infos[0], rng)
        return self._rate(judge, task, infos[0], rng, task.top_rating)

    def _on_criterion(self, judge: SimModel, info: AnswerInfo, name: str, text: str):
        """The judge as it judges criterion ``name``, and the answer's quality on it."""
        offset = rng_for(self.scenario.seed, "criterion", name, text.strip()).standard_normal()
        b = judge.judge
        sharpness = float(b.criteria.get(name, 1.0))
        on_it = replace(judge, judge=replace(b, discrimination=b.discrimination * sharpness))
        return on_it, replace(info, quality=info.quality + self.scenario.criterion_sd * offset)

    def _rubric_pairwise(self, judge, task, infos, rng) -> Reply:
        lines = []
        for name, _ in task.criteria:
            pair = [
                self._on_criterion(judge, i, name, t)
                for i, t in zip(infos, task.answers, strict=True)
            ]
            p_a, p_b, p_tie = self.pairwise_probabilities(pair[0][0], [q for _, q in pair], rng)
            p = p_a / max(p_a + p_b, 1e-12)
            strong_a, strong_b = p**3, (1.0 - p) ** 3
            dist = {
                "A>>B": p_a * strong_a,
                "A>B": p_a * (1 - strong_a),
                "A=B": p_tie,
                "B>A": p_b * (1 - strong_b),
                "B>>A": p_b * strong_b,
            }
            lines.append(f"{name}: [[{_sample(dist, rng)}]]")
        head = "I compared both answers on each criterion of the rubric in turn.\n\n"
        return Reply(tokens=tokenize(head + "\n".join(lines)), kind="judge", verdict="rubric")

    def _rubric_levels(self, judge, task, info, rng) -> Reply:
        lines = []
        for name, top in task.criteria:
            on_it, graded = self._on_criterion(judge, info, name, task.answers[0])
            u = self._utility(on_it, graded, float(rng.standard_normal()))
            level = (top + 1) / 2 + u * (top - 1) / 4 + 0.6 * float(rng.standard_normal())
            lines.append(f"{name}: [[{int(min(max(round(level), 1), max(top, 1)))}]]")
        head = "I placed the answer on each criterion's levels in turn.\n\n"
        return Reply(tokens=tokenize(head + "\n".join(lines)), kind="judge", verdict="rubric")

    def draft_rubric(self, task: JudgeTask) -> Reply:
        """A rubric for the question: correctness, helpfulness, clarity, and its topic."""
        topic = next((k for k in _keywords(task.question) if re.fullmatch(r"[a-z]{3,30}", k)), "")
        criteria = [
            {
                "name": "correctness",
                "weight": 3,
                "description": "Is every statement and step right?",
                "levels": ["wrong", "partly right", "right with slips", "fully right"],
            },
            {
                "name": "helpfulness",
                "weight": 2,
                "description": "Does it do what the user asked?",
                "levels": ["misses the request", "partly answers", "answers it fully"],
            },
            {
                "name": "clarity",
                "weight": 1,
                "description": "Is it easy to follow?",
                "levels": ["confusing", "readable", "clear and well organised"],
            },
        ]
        if topic:
            criteria.append(
                {
                    "name": f"{topic}-coverage"[:40],
                    "weight": 1,
                    "description": f"Does it cover what matters about {topic}?",
                    "levels": ["ignores it", "touches on it", "covers it well"],
                }
            )
        text = "Here is a rubric for this prompt.\n\n" + json.dumps(
            {"criteria": criteria}, indent=2
        )
        return Reply(tokens=tokenize(text), kind="judge", verdict="draft")

    def _rank(self, judge, task, infos, rng) -> Reply:
        b = judge.judge
        eps = rng.standard_normal(len(infos))
        u = np.array([self._utility(judge, info, e) for info, e in zip(infos, eps, strict=True)])
        u[0] += logit(b.position_first)
        order = np.argsort(-(u + rng.gumbel(size=len(u))), kind="stable")  # Plackett-Luce draw
        letters = [chr(ord("A") + int(i)) for i in order]
        first = np.exp(u - u.max())
        first /= first.sum()
        dist = {chr(ord("A") + i): float(q) for i, q in enumerate(first)}
        return _ranking_reply(letters, dist, rng)

    def _rate(self, judge, task, info, rng, top: int = 10) -> Reply:
        """A rating on 1..top: the 1-10 rule stretched linearly (1-100: mean
        ``50.5 + 16.5 u``, sd 8.8), so that both scales rate the same latent."""
        stretch = (top - 1) / 9
        mean = 1 + stretch * (4.5 + 1.5 * self._utility(judge, info, float(rng.standard_normal())))
        scores = np.arange(1, top + 1)
        weights = np.exp(-0.5 * ((scores - mean) / (0.8 * stretch)) ** 2) + 1e-12
        weights /= weights.sum()
        dist = {str(s): float(w) for s, w in zip(scores, weights, strict=True)}
        return _rating_reply(_sample(dist, rng), dist, rng, top)

    # entry point ----------------------------------------------------------------------------
    def chat(self, body: dict, call_index: int) -> Reply:
        """Answer a validated ``/v1/chat/completions`` body for a known model."""
        model = self.scenario.model(body["model"])
        messages = body["messages"]
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        task = read_judge_prompt(messages)
        if task is None:
            return self.generate(model, messages, max_tokens)
        temperature = float(
            body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0
        )
        nonce = body.get("seed")
        if nonce is None:
            nonce = 0 if temperature == 0 else f"call-{call_index}"
        rng = rng_for(self.scenario.seed, "judge", model.name, _messages_key(messages), nonce)
        reply = self.draft_rubric(task) if task.kind == "draft" else self.judge(model, task, rng)
        if max_tokens is not None and len(reply.tokens) > max_tokens:
            reply.tokens, reply.finish_reason = reply.tokens[:max_tokens], "length"
            if reply.verdict_index is not None and reply.verdict_index >= max_tokens:
                reply.verdict_index = None
        return reply

    def garbage(self, body: dict, call_index: int) -> Reply:
        """An unparseable judge reply (no label, malformed, ambiguous, truncated, refusal)."""
        rng = rng_for(self.scenario.seed, "garbage", body.get("model"), call_index)
        options = (
            ["Both answers have their merits, and it is hard to choose between them."],
            ["After careful comparison, my final verdict is: [[A>>>B]]"],
            ["My final verdict is [[A>B]] or [[B>A]], depending on what the user values."],
            ["Assistant A is more thorough, so my final verdict is: [[A"],
            ["I'm sorry, but I can't help with evaluating these responses."],
        )
        choice = options[int(rng.integers(len(options)))][0]
        finish = "length" if choice.endswith("[[A") else "stop"
        return Reply(tokens=tokenize(choice), finish_reason=finish, kind="garbage")


def _last_user(messages) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return str(m.get("content") or "")
    return ""


def _messages_key(messages) -> str:
    return hashlib.sha256(
        json.dumps([[m.get("role"), m.get("content")] for m in messages]).encode()
    ).hexdigest()


def _sample(dist: dict[str, float], rng: np.random.Generator) -> str:
    labels = list(dist)
    p = np.array([dist[k] for k in labels], dtype=float)
    return labels[int(rng.choice(len(labels), p=p / p.sum()))]


# --- judge reply texts -------------------------------------------------------------------
_PRAISE = (
    "is more accurate and better organised",
    "answers the question more directly",
    "covers the important points with fewer mistakes",
    "is clearer and more helpful",
)
_CRITIQUE = (
    "misses some key details",
    "contains a few inaccuracies",
    "is less focused on what was asked",
    "is harder to follow",
)


def _explain(task: JudgeTask, infos, winner: str | None, rng) -> str:
    """A short, plausible explanation for the verdict."""
    if winner is None:
        text = "Both assistants give answers of similar quality; neither is clearly better."
    else:
        loser = "B" if winner == "A" else "A"
        text = (
            f"Assistant {winner}'s answer {_PRAISE[int(rng.integers(len(_PRAISE)))]}, while "
            f"Assistant {loser}'s answer {_CRITIQUE[int(rng.integers(len(_CRITIQUE)))]}."
        )
    if len(infos) == 2 and max(i.length for i in infos) > 1.5 * max(
        1, min(i.length for i in infos)
    ):
        longer = "A" if infos[0].length > infos[1].length else "B"
        text += f" Assistant {longer}'s answer is considerably longer."
    return text


def _verdict_reply(task, infos, label, dist, rng) -> Reply:
    if task.kind == "pairwise":
        winner = None if label == "A=B" else label[0]
    else:
        winner = None if label == "C" else label
    head = _explain(task, infos, winner, rng) + "\n\nMy final verdict is: "
    tokens = tokenize(head) + ["[[", label, "]]"]
    return Reply(
        tokens=tokens,
        verdict_index=len(tokens) - 2,
        verdict_distribution=dist,
        kind="judge",
        verdict=label,
    )


def _ranking_reply(letters, dist, rng) -> Reply:
    head = (
        f"Assistant {letters[0]} gives the most complete and accurate answer, and Assistant "
        f"{letters[-1]} the weakest.\n\nMy final ranking is: "
    )
    body = []
    for i, letter in enumerate(letters):
        if i:
            body.append(">")
        body.append(letter)
    tokens = tokenize(head) + ["[["] + body + ["]]"]
    return Reply(
        tokens=tokens,
        verdict_index=len(tokenize(head)) + 1,
        verdict_distribution=dist,
        kind="judge",
        verdict=">".join(letters),
    )


def _rating_reply(score: str, dist, rng, top: int = 10) -> Reply:
    quality = 1 + (int(score) - 1) * 9 / (top - 1)  # on the 1-10 scale
    words = (
        "excellent"
        if quality >= 8
        else "solid"
        if quality >= 6
        else "weak"
        if quality <= 3
        else "adequate"
    )
    head = f"The response is {words}: it {_PRAISE[int(rng.integers(len(_PRAISE)))] if quality >= 6 else _CRITIQUE[int(rng.integers(len(_CRITIQUE)))]}.\n\nRating: "
    tokens = tokenize(head) + ["[[", score, "]]"]
    return Reply(
        tokens=tokens,
        verdict_index=len(tokens) - 2,
        verdict_distribution=dist,
        kind="judge",
        verdict=score,
    )
