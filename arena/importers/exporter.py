"""Turn stored rows back into records, for `arena_export` (streamed, a few queries in all).

Three streams in id order, each read through a server-side cursor (PostgreSQL) or in
chunks (SQLite) as plain value tuples, never model instances: the prompts, their answers,
then the judgments with their match's fields (one join) merged with the match slots
(a second stream in the same match order), so a judgment's contestants cost no query of
their own. Measured on 1.67M battles: see ``bench/export.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.db import connection, connections
from django.db.models import Exists, F, Func, IntegerField, Max, Min, OuterRef, Q
from django.db.models.expressions import RawSQL

from arena.boards import one_snapshot
from arena.importers.records import (
    JudgmentRecord,
    OutputRecord,
    PromptRecord,
    RubricRecord,
    VoterRecord,
    judgment_maker,
)
from arena.models import (
    Contestant,
    Judge,
    Judgment,
    Match,
    MatchSlot,
    Output,
    Prompt,
    PromptSet,
    Rubric,
    Voter,
)
from arena.vocabulary import parse_presentation
from arena.voters import exported_label

CHUNK = 5000  # rows fetched at a time from each cursor

# (Judgment's values_list column, the JudgmentRecord field it gives) for the fields taken as
# stored; match_id, contestants, presentation, prompt_id and output_configs are worked out.
_COPIED = (
    ("kind", "kind"),
    ("winner", "winner"),
    ("strength", "strength"),
    ("score", "score"),
    ("preference", "preference"),
    ("repeat", "repeat"),
    ("weight", "weight"),
    ("match__category", "category"),
    ("match__language", "language"),
    ("raw_text", "raw_text"),
    ("verdict_label", "verdict_label"),
    ("error", "error"),
)
_OWN = (
    "match_id",
    "contestants",
    "ranking",
    "presentation",
    "prompt_id",
    "gold_winner",
    "voter",
    "judge",
    "criteria",
    "probabilities",
    "status",
)
_make_judgment = judgment_maker((*_OWN, "output_configs", *(name for _, name in _COPIED)))


@contextmanager
def one_reading():
    """What an export reads, read as one: on PostgreSQL inside one read-only REPEATABLE READ
    transaction (:func:`arena.boards.one_snapshot`), so that its counts, prompts, answers,
    judgments and slots are of one moment and its server-side cursors stream. Outside a
    transaction (autocommit) Django declares them ``WITH HOLD``, and PostgreSQL computes
    and stores every row of such a cursor when the statement's own transaction commits,
    before the first is fetched: 5 s of a 1.67M-battle export's 24-26 waited for, 17-20 s
    streamed. On SQLite no transaction: Django's are IMMEDIATE here (``settings``), and an
    export's would hold the write lock for as long as it runs; a set's judgments and slots
    are read by two statements at once, so in one read transaction of SQLite's."""
    if connection.vendor != "postgresql":
        yield
        return
    with one_snapshot():
        yield


def iter_records(
    prompt_set: PromptSet,
    include_failed: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Iterator[PromptRecord | RubricRecord | OutputRecord | VoterRecord | JudgmentRecord]:
    """Prompts, then rubrics (the set's and its prompts'), outputs, the flagged voters of
    its judgments and the judgments of one prompt set, in id order.

    A typed prompt private to its author (``Prompt.visibility``) is left out, with its
    answers and the judgments of its battles: an export is meant to be shared. So the
    arena's own voters are named by pseudonyms (:func:`arena.voters.exported_label`). Read it
    inside :func:`one_reading`.
    ``progress``, if given, is told the number of judgments read as reading goes on
    (:func:`judgment_count` is their total)."""
    names = dict(Contestant.objects.values_list("id", "name"))
    prompt_ids: dict[int, str] = {}
    public = Prompt.objects.filter(prompt_set=prompt_set, visibility=Prompt.Visibility.PUBLIC)
    prompts = public.order_by("id").values_list(
        "id", "external_id", "text", "category", "language", "reference_answer", "turns"
    )
    for pk, external_id, text, category, language, reference, turns in prompts.iterator(
        chunk_size=CHUNK
    ):
        prompt_ids[pk] = external_id
        yield PromptRecord(
            external_id=external_id,
            text=text,
            category=category,
            language=language,
            reference_answer=reference,
            turns=tuple(turns or ()),
        )
    rubrics = Rubric.objects.filter(Q(prompt_set=prompt_set) | Q(prompt__in=public))
    rubrics = rubrics.order_by("id").values_list("prompt_id", "criteria", "source")
    for prompt_id, criteria, source in sorted(rubrics, key=lambda r: r[0] is not None):
        yield RubricRecord(
            criteria=tuple(criteria),
            prompt_id=prompt_ids[prompt_id] if prompt_id is not None else None,
            source=source,
        )
    configs: dict[int, str] = {}  # output id -> its generation_config, when not ""
    outputs = (
        Output.objects.filter(prompt__in=public)
        .order_by("id")
        .values_list("id", "prompt_id", "contestant_id", "text", "generation_config")
    )
    for pk, prompt_id, contestant_id, text, config in outputs.iterator(chunk_size=CHUNK):
        if config:
            configs[pk] = config
        yield OutputRecord(
            prompt_id=prompt_ids[prompt_id],
            contestant=names[contestant_id],
            text=text,
            generation_config=config,
        )
    # the flagged voters (few), so that their votes stay off the boards where they are imported
    flagged = Voter.objects.filter(flagged=True).filter(
        Exists(
            Judgment.objects.filter(voter=OuterRef("pk"), match__prompt_set=prompt_set).exclude(
                match__prompt__visibility=Prompt.Visibility.PRIVATE
            )
        )
    )
    for label, kind, reason in flagged.order_by("id").values_list("label", "kind", "flag_reason"):
        yield VoterRecord(label=exported_label(label, kind), flagged=True, reason=reason)
    span = _match_span(prompt_set)
    slots = _slots(prompt_set, names, configs, span)
    judgments = _judgments(prompt_set, include_failed, span).values_list(
        "match_id",
        "match__external_id",
        "match__prompt_id",
        "match__gold_winner",
        "ranking",
        "presentation",
        "voter_id",
        "judge_id",
        "criteria",
        "probabilities",
        "status",
        *(column for column, _ in _COPIED),
    )
    # voters' labels and judges' names by id: a dict look-up a judgment instead of two joins
    voter_of = {
        id_: exported_label(label, kind)
        for id_, label, kind in Voter.objects.values_list("id", "label", "kind")
    }.get
    judge_of = dict(Judge.objects.values_list("id", "name")).get
    make, get_prompt = _make_judgment, prompt_ids.get
    ok = Judgment.Status.OK.value
    orders: dict[str, tuple[int, ...]] = {}  # "0,1" -> (0, 1): a few distinct values
    match_of = -1
    contestants: tuple[str, ...] = ()
    output_configs: tuple[str, ...] = ()
    slot = next(slots, None)
    for chunk in _raw_chunks(judgments):
        for row in chunk:
            match_id, external_id, prompt_id, gold, ranking, presentation, voter, judge = row[:8]
            criteria, probabilities, status = row[8], row[9], row[10]
            if match_id != match_of:  # the match's slots: the next ones in the slot stream
                match_of, names_of, configs_of = match_id, [], []
                while slot is not None and slot[0] < match_id:
                    slot = next(slots, None)
                while slot is not None and slot[0] == match_id:
                    names_of.append(slot[1])
                    configs_of.append(slot[2])
                    slot = next(slots, None)
                contestants = tuple(names_of)
                output_configs = tuple(configs_of) if any(configs_of) else ()
            order = orders.get(presentation)
            if order is None:
                order = orders[presentation] = parse_presentation(presentation)
            yield make(
                (
                    external_id or f"match-{match_id}",
                    contestants,
                    _ranking(ranking),
                    order,
                    get_prompt(prompt_id) if prompt_id else None,
                    gold or None,
                    voter_of(voter) if voter else None,
                    judge_of(judge) if judge else None,
                    None if criteria is None else _json(criteria),
                    None if probabilities is None else _json(probabilities),
                    "" if status == ok else status,
                    output_configs,
                )
                + row[11:]
            )
        if progress is not None:
            progress(len(chunk))


# The joined match's own id, not the row's match_id (Django would write that for
# "match_id" or "match__id"): the same order, for PostgreSQL's plan (see _of_the_sets_matches).
_MATCH_ID = RawSQL(f"{Match._meta.db_table}.id", ()).asc()
# The match's set as an expression no index serves (SQLite's unary +): see _of_the_sets_matches.
_SET_UNINDEXED = Func(
    F("match__prompt_set"), template="+%(expressions)s", output_field=IntegerField()
)


def judgment_count(prompt_set: PromptSet, include_failed: bool = True) -> int:
    """How many judgments :func:`iter_records` gives (for a progress bar's total)."""
    return _judgments(prompt_set, include_failed, _match_span(prompt_set)).count()


def _judgments(prompt_set: PromptSet, include_failed: bool, span: tuple[int, int] | None):
    judgments = _of_the_sets_matches(Judgment.objects, prompt_set, "id", span).exclude(
        match__prompt__visibility=Prompt.Visibility.PRIVATE
    )
    if not include_failed:
        judgments = judgments.filter(status=Judgment.Status.OK)
    return judgments


def _match_span(prompt_set: PromptSet) -> tuple[int, int] | None:
    """SQLite: (smallest, largest) id of the set's matches, for :func:`_of_the_sets_matches`
    ((0, -1) if it has none); None on PostgreSQL, which needs none."""
    if connection.vendor != "sqlite":
        return None
    span = Match.objects.filter(prompt_set=prompt_set).aggregate(lo=Min("id"), hi=Max("id"))
    return (span["lo"], span["hi"]) if span["lo"] is not None else (0, -1)


def _of_the_sets_matches(manager, prompt_set: PromptSet, then: str, span):
    """The rows of ``manager`` (judgments, slots) of the set's matches, in the order of
    their match, then of ``then``. On PostgreSQL by a join on the set (its plan sorts them,
    in parallel). SQLite, given the set through its index (``match_board_idx``), read the
    set's matches in that index's order and sorted all the rows before handing over the
    first (10 s of a 1.67M-battle export's 30, waited for): there the rows are read along
    their own ``match_id`` index, over the range of the set's match ids, with the set
    checked on each match (``_SET_UNINDEXED``), so they come in order as they are read
    (only each match's own rows are sorted) and the export's Python works meanwhile.
    ``span``: :func:`_match_span`'s (None on PostgreSQL)."""
    if span is None:
        return manager.filter(match__prompt_set=prompt_set).order_by(_MATCH_ID, then)
    return (
        manager.alias(set_id=_SET_UNINDEXED)
        .filter(set_id=prompt_set.id, match__gte=span[0], match__lte=span[1])
        .order_by("match_id", then)
    )


def _slots(
    prompt_set: PromptSet, names: dict[int, str], configs: dict[int, str], span
) -> Iterator[tuple[int, str, str]]:
    """(match id, contestant name, generation_config of the answer shown) of every slot of
    the set's matches, in (match, position) order."""
    rows = _of_the_sets_matches(MatchSlot.objects, prompt_set, "position", span).values_list(
        "match_id", "contestant_id", "output_id"
    )
    get = configs.get
    for chunk in _raw_chunks(rows):
        for match_id, contestant_id, output_id in chunk:
            yield match_id, names[contestant_id], get(output_id, "") if output_id else ""


def _raw_chunks(queryset) -> Iterator[list[tuple]]:
    """A values_list queryset's rows as the database driver gives them, ``CHUNK`` at a time,
    through Django's chunked cursor (server-side on PostgreSQL): without the per-row
    converters of ``.iterator()``, a third of the export's time. Only for columns the driver
    already gives as Python values (numbers, text; JSON comes as its text).

    On PostgreSQL the next chunk is fetched by a thread while the caller works on this
    one: the server reads it meanwhile (one fetch at a time a cursor, on the caller's
    connection, its transaction and data; psycopg's connection lock serialises the use of
    a connection from two threads). SQLite's chunks are fetched by the caller: its driver
    lets go of Python's lock around each row's step, so a fetching thread beside the
    caller's Python handed the lock over once a row (a 1.67M-battle export: 36-42 s with
    the thread, 24 s without, its rows read in order as they come, see
    :func:`_of_the_sets_matches`)."""
    sql, params = queryset.query.sql_with_params()
    connection = connections[queryset.db]
    # as QuerySet.iterator(): no server-side cursor where the settings forbid them (pgbouncer)
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetch = cursor.cursor.fetchmany  # the driver's own: Django's wrapper is per thread
        if connection.vendor != "postgresql":
            while True:
                with connection.wrap_database_errors:
                    rows = fetch(CHUNK)
                if not rows:
                    return
                yield rows
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="arena-export") as reader:
            pending = reader.submit(fetch, CHUNK)
            while True:
                with connection.wrap_database_errors:
                    rows = pending.result()
                if not rows:
                    return
                pending = reader.submit(fetch, CHUNK)
                yield rows


def _ranking(value) -> tuple[int, ...] | None:
    """A stored ranking (JSON text from the driver, or a list) as the record's tuple."""
    if value is None:
        return None
    return tuple(_json(value))


def _json(value):
    """A JSON column's value as the driver gave it (its text, or parsed) as Python."""
    return json.loads(value) if isinstance(value, str | bytes) else value
