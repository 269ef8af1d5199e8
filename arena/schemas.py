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
    """One model's line of a fitted leaderboard (``LeaderboardSnapshot.rows``, or a board
    option's rows: ``rating`` then holds what the board's ``value`` names)."""

    rank_ub: int
    model: str
    rating: float
    ci_lower: float | None = None
    ci_upper: float | None = None
    votes: float  # weighted votes: a soft preference counts a fraction
    win_rate: float | None = None
    # Swiss standings: the score's standard deviation across simulated tournaments, the
    # chance to win one, the mean rank.
    standard_error: float | None = None
    p_first: float | None = None
    mean_rank: float | None = None
    # Win rate vs the baseline (AlpacaEval): the length-controlled win rate (%) and its SE.
    length_controlled_win_rate: float | None = None
    lc_standard_error: float | None = None
    # Human-anchored standings (a run's board, arena.anchoring): the human labels on the
    # model's matches (``standard_error`` is the rating's).
    human_labels: int | None = None


class Board(Schema):
    """A fitted leaderboard snapshot; ``pending`` (and no rows) while its first fit runs."""

    scope: str
    method: str
    # What the rows' ``rating`` holds: "rating" (Bradley-Terry, Elo) or "score" (Swiss).
    value: str = "rating"
    # The methods this snapshot can answer besides "bt" (``?method=``).
    options: list[str] = []
    # The option's settings (Elo's k; Swiss rounds, tournaments, prior votes).
    coefficients: dict = {}
    created_at: str | None
    n_votes: int
    n_models: int
    rows: list[BoardRow]
    graph: dict
    pending: bool = False
