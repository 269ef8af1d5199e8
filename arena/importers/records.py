"""Normalised records that every file format parses into (pure Python, no Django).

A parser reads a file and yields these records, one at a time, in file order. The
Django loader (`arena.importers.loader`) maps them to rows; the rating CLI
(`python -m arena.ratings`) feeds them straight to the solvers. Neither needs to
know which format a record came from.

Conventions
-----------
- ``contestants`` is the match's slot order: slot 0 is "A" (left / first shown).
- ``winner`` always names a *slot* of the match ("a" = slot 0, "b" = slot 1), never a
  position in the order the judge saw; ``presentation`` says that order: ``(0, 1)`` means
  slot 0 was shown first, ``(1, 0)`` means the judge saw slot 1 first.
- A comparison judged in both orders (an LLM judge's PRP pair, Arena-Hard's two games)
  is two JudgmentRecords with the same ``match_id`` and different ``presentation``:
  the bootstrap resamples them together as one unit.
- ``weight`` > 1 means "this many identical votes" (aggregated files such as the
  Chatbot Arena counts); everything else has weight 1.
- Exactly one of ``voter`` (a person, or an anonymous crowd) and ``judge`` (an LLM
  judge configuration) is set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Literal

from arena.vocabulary import WINNERS  # noqa: F401 (the formats read the winner names here)

Winner = Literal["a", "b", "tie", "bothbad"]
Kind = Literal["pairwise", "ranking", "score"]


MESSAGE_CHARS = 300  # an error message quoting a long value is cut to this length


class ImportRowError(ValueError):
    """A record that cannot be read: ``file:line: field: message``.

    The line is 1-based; line 0 means the file as a whole. Text that cannot be printed
    (a lone surrogate, from a file or a file name) is shown as its ``\\udXXX`` escape.
    """

    def __init__(self, path: str, line: int, field: str, message: str):
        message = printable(message)
        if len(message) > MESSAGE_CHARS:
            message = message[: MESSAGE_CHARS - 1] + "…"
        self.path, self.line = printable(str(path)), line
        self.field, self.message = printable(field), message
        super().__init__(f"{self.path}:{line}: {self.field}: {message}")

    def as_dict(self) -> dict:
        return {"path": self.path, "line": self.line, "field": self.field, "message": self.message}

    def __reduce__(self):  # pickled as its four parts (an import's reader sends it)
        return type(self), (self.path, self.line, self.field, self.message)


def printable(text: str) -> str:
    """``text`` with lone surrogates (unencodable anywhere) replaced by their escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True)
class PromptRecord:
    external_id: str
    text: str
    category: str = ""
    language: str = ""
    reference_answer: str = ""
    turns: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class OutputRecord:
    prompt_id: str
    contestant: str
    text: str
    generation_config: str = ""
    line: int = 0


@dataclass(frozen=True)
class RubricRecord:
    """The criteria answers are judged by (the list :func:`arena.rubrics.parse_criteria`
    checks, as given): of one prompt (``prompt_id``), or without one of every prompt of the
    set. Its criterion names are what a criterion board may be asked for."""

    criteria: tuple[dict, ...] = field(hash=False)
    prompt_id: str | None = None
    source: str = ""  # who wrote it
    line: int = 0


@dataclass(frozen=True)
class VoterRecord:
    """A voter as the judgments name it (``voter``), with its flag: a voter found to bend
    the board, whose votes are counted apart, off the public boards (Voter.flagged)."""

    label: str
    flagged: bool = False
    reason: str = ""  # why it was flagged
    line: int = 0


@dataclass(frozen=True)
class JudgmentRecord:
    match_id: str
    contestants: tuple[str, ...]
    kind: Kind = "pairwise"
    winner: Winner | None = None
    strength: int = 1  # 2 for a strong verdict (A>>B)
    ranking: tuple[int, ...] | None = None  # K-wise: rank per slot, 1 = best, ties share a rank
    score: float | None = None  # single-answer grading (1..10) of slot 0
    preference: float | None = None  # AlpacaEval soft preference in [1, 2]; 1 = slot 0 better
    presentation: tuple[int, ...] = (0, 1)
    repeat: int = 0
    weight: int = 1
    voter: str | None = None
    judge: str | None = None
    prompt_id: str | None = None
    category: str = ""
    language: str = ""
    turn: int = 1
    raw_text: str = ""
    verdict_label: str = ""  # the verdict as the source wrote it ("A>>B", "1", "model_a" ...)
    gold_winner: Winner | None = None  # a known right answer (LLMBar label), for audits
    style: tuple[dict, ...] | None = None  # per slot: {"tokens", "headers", "lists", "bold"}
    # per slot: the generation_config of the answer the slot showed, when a prompt has
    # several answers by one contestant (LMArena's datasets); () = the answer with config ""
    output_configs: tuple[str, ...] = ()
    # per criterion or aspect its verdict ({name: winner}, slot terms) or, on a score, its
    # level ({name: level}): what a rubric judge or an aspect ballot said (Judgment.criteria)
    criteria: dict | None = field(default=None, hash=False)
    # the judge's verdict probabilities from logprobs, as stored (Judgment.probabilities)
    probabilities: dict | None = field(default=None, hash=False)
    # a judgment without a verdict: "failed" (the judge's call failed) or "parse_failed"
    # (its reply could not be read); "" = as the verdict says (none: parse_failed)
    status: str = ""
    error: str = ""  # why there is no verdict
    meta: dict = field(default_factory=dict, hash=False, compare=False)
    line: int = 0
    path: str = field(default="", compare=False)  # the file of ``line`` when not the one imported


def judgment_maker(names: Sequence[str]) -> Callable[[tuple], JudgmentRecord]:
    """A maker of JudgmentRecords from tuples of the values of ``names`` (in that order; the
    other fields take their defaults), equal to ``JudgmentRecord(**dict(zip(names, values)))``.

    It sets the record's ``__dict__`` instead of calling the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field), in about a quarter of its time: an
    export of 1.67M battles has about 18 us a battle in all for its 30 s goal, and the
    ``__init__`` alone took 8 us of it.
    """
    names = tuple(names)
    unknown = set(names) - {f.name for f in fields(JudgmentRecord)}
    if unknown:
        raise TypeError(f"JudgmentRecord has no field {', '.join(sorted(unknown))}")
    required = {
        f.name
        for f in fields(JudgmentRecord)
        if f.default is MISSING and f.default_factory is MISSING
    } - set(names)
    if required:
        raise TypeError(f"JudgmentRecord needs {', '.join(sorted(required))}")
    # every field, the ones not given with their default: a copy of it is presized, so
    # filling it in resizes nothing (a quarter of a record's time)
    template = {
        f.name: None if f.name in names or f.default is MISSING else f.default
        for f in fields(JudgmentRecord)
    }
    factories = [
        (f.name, f.default_factory)
        for f in fields(JudgmentRecord)
        if f.default_factory is not MISSING and f.name not in names
    ]
    new, set_state, count = object.__new__, object.__setattr__, len(names)

    def make(values: tuple) -> JudgmentRecord:
        if len(values) != count:  # zip's strict=True, checked here: a third of zip's time
            raise ValueError(f"{len(values)} values for {count} fields")
        record = new(JudgmentRecord)
        state = template.copy()
        for name, factory in factories:
            state[name] = factory()
        state.update(zip(names, values, strict=False))  # lengths checked above
        set_state(record, "__dict__", state)
        return record

    return make


class VoteColumns:
    """Pairwise votes of voters (a battle log's lines without a conversation), one per line,
    held as columns instead of a :class:`JudgmentRecord` each: what a format may hand the
    loader when a record object per line is the cost (``fastchat.batches``).

    Every vote is ``kind`` pairwise with a winner, shown in slot order, repeat 0, weight 1,
    strength 1, no judge, prompt or output; the columns hold what differs from line to line.
    :meth:`records` gives the same votes as the records ``parse`` gives. A format names each
    match once in a file (``Occurrences``): a first import into a set probes none of them.
    """

    __slots__ = (
        "lines", "match_ids", "model_a", "model_b", "winners", "voters",
        "categories", "languages", "verdict_labels",
    )  # fmt: skip

    def __init__(self):
        self.lines: list[int] = []
        self.match_ids: list[str] = []
        self.model_a: list[str] = []
        self.model_b: list[str] = []
        self.winners: list[str] = []  # ours (arena.vocabulary)
        self.voters: list[str] = []
        self.categories: list[str] = []
        self.languages: list[str] = []
        self.verdict_labels: list[str] = []  # the winner as the file wrote it

    def __len__(self) -> int:
        return len(self.lines)

    @classmethod
    def of(cls, rows: list[tuple]) -> VoteColumns:
        """The votes of ``rows`` as columns, one tuple a line: (line, match id, model a,
        model b, winner, voter, category, language, verdict label). A reader collects a
        tuple a line and turns the batch at once: one append a line."""
        votes = cls()
        if rows:
            (
                votes.lines, votes.match_ids, votes.model_a, votes.model_b, votes.winners,
                votes.voters, votes.categories, votes.languages, votes.verdict_labels,
            ) = map(list, zip(*rows, strict=True))  # fmt: skip
        return votes

    def records(self) -> list[JudgmentRecord]:
        """The votes as JudgmentRecords (the fields the loader stores and names lines by)."""
        return [
            JudgmentRecord(
                match_id=match_id,
                contestants=(a, b),
                winner=winner,
                voter=voter,
                category=category,
                language=language,
                verdict_label=label,
                line=line,
            )  # fmt: skip
            for line, match_id, a, b, winner, voter, category, language, label in zip(
                self.lines,
                self.match_ids,
                self.model_a,
                self.model_b,
                self.winners,
                self.voters,
                self.categories,
                self.languages,
                self.verdict_labels,
                strict=True,
            )  # fmt: skip
        ]
