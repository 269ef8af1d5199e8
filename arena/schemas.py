"""JSON shapes shared by the API routers of both apps (django-ninja schemas)."""

from ninja import Schema


class FieldError(Schema):
    """One invalid value of a request: where, and what is wrong with it."""

    field: str | None = None
    message: str


class Problem(Schema):
    """A refused request (:class:`arena.errors.Refusal`): what is wrong, and with which field.

    A request whose values do not validate (422) lists every invalid one in ``errors``.
    """

    detail: str
    field: str | None = None
    errors: list[FieldError] | None = None


class BoardRow(Schema):
    """One model's line of a fitted leaderboard (``LeaderboardSnapshot.rows``)."""

    rank_ub: int
    model: str
    rating: float
    ci_lower: float | None = None
    ci_upper: float | None = None
    votes: float  # weighted votes: a soft preference counts a fraction
    win_rate: float | None = None


class Board(Schema):
    """A fitted leaderboard snapshot; ``pending`` (and no rows) while its first fit runs."""

    scope: str
    method: str
    created_at: str | None
    n_votes: int
    n_models: int
    rows: list[BoardRow]
    graph: dict
    pending: bool = False
