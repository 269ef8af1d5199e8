"""The arena: who competes, on what, what was compared, who said which was better.

Invariants live in the database (unique keys that make retries and re-imports idempotent,
check constraints on verdicts) so that no code path, admin edit or race can break them.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from arena.textstats import text_stats

MAX_SLOTS = 10


class Contestant(models.Model):
    """A model or system under evaluation."""

    class Kind(models.TextChoices):
        MODEL = "model", "Model"
        # Anonymous answers with no model behind them (LLMBar's output_1/output_2): usable
        # for judge audits, never shown on a leaderboard.
        ANONYMOUS = "anonymous", "Anonymous answer source"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MODEL)
    family = models.CharField(
        max_length=100,
        blank=True,
        help_text="Model family, for self-preference audits (e.g. gpt, claude, llama).",
    )
    provider = models.CharField(max_length=100, blank=True)
    # Optional generation endpoint (OpenAI-compatible); the key is read from the named env var.
    base_url = models.URLField(blank=True)
    api_model = models.CharField(
        max_length=200, blank=True, help_text="Model name sent to the endpoint."
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable that holds the API key (never the key).",
    )
    generation_params = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(
        default=True, help_text="Inactive contestants are not drawn for new battles."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class PromptSet(models.Model):
    """A collection of prompts, and the comparisons made on them (one leaderboard each)."""

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(
        max_length=300,
        blank=True,
        help_text="Where the data came from (repository @ commit, file).",
    )
    license = models.CharField(max_length=100, blank=True)
    rating_anchor = models.CharField(
        max_length=250,
        blank=True,
        help_text="MODEL=RATING pins that model's rating (e.g. mixtral-8x7b-instruct-v0.1=1114); empty = mean 1000.",
    )
    is_public_arena = models.BooleanField(
        default=False, help_text="Prompts of this set are served on the public battle page."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        from arena.ratings.scale import parse_anchor

        if self.rating_anchor:
            try:
                parse_anchor(self.rating_anchor)
            except ValueError as exc:
                raise ValidationError({"rating_anchor": str(exc)}) from None


class Prompt(models.Model):
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    external_id = models.CharField(max_length=200)
    text = models.TextField()
    turns = models.JSONField(
        default=list, blank=True, help_text="Later user turns of a multi-turn prompt."
    )
    category = models.CharField(max_length=100, blank=True, db_index=True)
    language = models.CharField(max_length=50, blank=True)
    reference_answer = models.TextField(blank=True)
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "external_id"], name="prompt_unique_per_set"
            ),
        ]

    def __str__(self):
        return f"{self.prompt_set.slug}/{self.external_id}"


class Output(models.Model):
    """One contestant's answer to one prompt."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="outputs")
    contestant = models.ForeignKey(Contestant, on_delete=models.CASCADE, related_name="outputs")
    generation_config = models.CharField(
        max_length=64, blank=True, default="", help_text="Label or hash of the decoding settings."
    )
    text = models.TextField()
    token_length = models.PositiveIntegerField(default=0)
    header_count = models.PositiveIntegerField(default=0)
    list_count = models.PositiveIntegerField(default=0)
    bold_count = models.PositiveIntegerField(default=0)
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt", "contestant", "generation_config"],
                name="output_unique_per_prompt_contestant_config",
            ),
        ]

    def __str__(self):
        return f"{self.contestant} on {self.prompt_id}"

    def fill_stats(self):
        stats = text_stats(self.text)
        self.token_length, self.header_count = stats.tokens, stats.headers
        self.list_count, self.bold_count = stats.lists, stats.bold

    def save(self, *args, **kwargs):
        self.fill_stats()
        super().save(*args, **kwargs)


class Voter(models.Model):
    """A person (or an imported crowd/annotator) who votes. Anonymous voters are cookie sessions."""

    class Kind(models.TextChoices):
        SESSION = "session", "Browser session"
        USER = "user", "Logged-in user"
        IMPORTED = "imported", "Imported annotator / crowd"

    label = models.CharField(
        max_length=200,
        unique=True,
        help_text="Session token, user id or import label (e.g. pandalm:annotator1).",
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    ip_hash = models.CharField(max_length=64, blank=True, db_index=True)
    flagged = models.BooleanField(default=False)
    flag_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.label if self.kind != self.Kind.SESSION else f"session {self.label[:8]}…"


class Match(models.Model):
    """One comparison task over K >= 2 answers to the same prompt, in the slot order shown."""

    class Origin(models.TextChoices):
        ARENA = "arena", "Human arena battle"
        RUN = "run", "Evaluation run"
        IMPORT = "import", "Imported"

    # What the browser sees: an unguessable id, so battles cannot be enumerated.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="matches")
    prompt = models.ForeignKey(
        Prompt, null=True, blank=True, on_delete=models.CASCADE, related_name="matches"
    )
    origin = models.CharField(max_length=16, choices=Origin.choices)
    source = models.CharField(
        max_length=100, blank=True, help_text="Importer or run that created it."
    )
    external_id = models.CharField(max_length=200, blank=True)
    run = models.ForeignKey(
        "judges.EvaluationRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="matches",
    )
    round = models.PositiveIntegerField(
        null=True, blank=True, help_text="Tournament round, for designs that have them."
    )
    k = models.PositiveSmallIntegerField(default=2)
    category = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=50, blank=True)
    policy = models.CharField(
        max_length=50, blank=True, help_text="Matchmaking policy or design that drew this match."
    )
    pair_probability = models.FloatField(
        null=True,
        blank=True,
        help_text="Probability with which the policy drew this set of contestants.",
    )
    owner = models.ForeignKey(
        Voter,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="battles",
        help_text="Voter this battle was served to.",
    )
    gold_winner = models.CharField(
        max_length=8,
        blank=True,
        help_text="Known right answer (a, b or tie), for gold / honeypot battles.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "matches"
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "source", "external_id"],
                condition=~Q(external_id=""),
                name="match_unique_external_id",
            ),
            models.CheckConstraint(
                condition=Q(k__gte=2) & Q(k__lte=MAX_SLOTS), name="match_k_between_2_and_10"
            ),
            models.CheckConstraint(
                condition=Q(gold_winner__in=["", "a", "b", "tie"]), name="match_gold_winner_valid"
            ),
            models.CheckConstraint(
                condition=Q(pair_probability__isnull=True)
                | (Q(pair_probability__gt=0) & Q(pair_probability__lte=1)),
                name="match_pair_probability_in_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["prompt_set", "k", "category"], name="match_board_idx"),
            models.Index(fields=["run", "round"], name="match_run_idx"),
        ]

    def __str__(self):
        return f"match {self.pk} ({self.k}-way, {self.origin})"


class MatchSlot(models.Model):
    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="slots")
    position = models.PositiveSmallIntegerField(help_text="0 = left / first shown.")
    contestant = models.ForeignKey(Contestant, on_delete=models.PROTECT, related_name="slots")
    output = models.ForeignKey(
        Output, null=True, blank=True, on_delete=models.PROTECT, related_name="slots"
    )

    class Meta:
        ordering = ["match", "position"]
        constraints = [
            models.UniqueConstraint(fields=["match", "position"], name="slot_unique_position"),
            models.UniqueConstraint(fields=["match", "contestant"], name="slot_unique_contestant"),
            models.CheckConstraint(
                condition=Q(position__lt=MAX_SLOTS), name="slot_position_below_max"
            ),
        ]
        indexes = [models.Index(fields=["contestant", "match"], name="slot_contestant_idx")]

    def __str__(self):
        return f"{self.match_id}[{self.position}] {self.contestant_id}"


class Judgment(models.Model):
    """One verdict on a match by one judge: a human voter or an LLM judge configuration.

    ``winner`` names a slot of the match ("a" = slot 0), whatever order the judge saw;
    ``presentation`` records that order ("1,0" = slot 1 was shown first).
    ``weight`` > 1 stands for that many identical votes (aggregated imports).
    """

    class Kind(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise"
        RANKING = "ranking", "K-wise ranking"
        SCORE = "score", "Single-answer score"

    class Status(models.TextChoices):
        OK = "ok", "OK"
        PARSE_FAILED = "parse_failed", "Verdict could not be parsed"
        FAILED = "failed", "Call failed"

    class Winner(models.TextChoices):
        A = "a", "A better"
        B = "b", "B better"
        TIE = "tie", "Tie"
        BOTH_BAD = "bothbad", "Both bad"

    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="judgments")
    judge = models.ForeignKey(
        "judges.Judge", null=True, blank=True, on_delete=models.PROTECT, related_name="judgments"
    )
    voter = models.ForeignKey(
        Voter, null=True, blank=True, on_delete=models.PROTECT, related_name="judgments"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PAIRWISE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OK)
    winner = models.CharField(max_length=8, choices=Winner.choices, null=True, blank=True)
    strength = models.PositiveSmallIntegerField(
        default=1, help_text="2 for a strong verdict (A>>B)."
    )
    ranking = models.JSONField(
        null=True, blank=True, help_text="K-wise: rank per slot, 1 = best; ties share a rank."
    )
    score = models.FloatField(null=True, blank=True, help_text="Single-answer grade of slot 0.")
    preference = models.FloatField(
        null=True,
        blank=True,
        help_text="Soft preference in [1, 2] (AlpacaEval); 1 = slot 0 better.",
    )
    presentation = models.CharField(
        max_length=40, default="0,1", help_text="Slot order shown to the judge, comma-separated."
    )
    repeat = models.PositiveSmallIntegerField(default=0)
    weight = models.PositiveIntegerField(default=1)
    verdict_label = models.CharField(
        max_length=100, blank=True, help_text="The verdict as the judge or source wrote it."
    )
    raw_text = models.TextField(blank=True)
    probabilities = models.JSONField(
        null=True, blank=True, help_text="Verdict probabilities from logprobs."
    )
    error = models.TextField(blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    idempotency_key = models.CharField(max_length=64, blank=True)
    content_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="LLM judgments: sha256 of judge version + rendered messages (prompt, answers, "
        "order) + repeat. An OK judgment with the same key is reused instead of paying again.",
    )
    shown_at = models.DateTimeField(null=True, blank=True)
    voted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(judge__isnull=False) & Q(voter__isnull=True))
                | (Q(judge__isnull=True) & Q(voter__isnull=False)),
                name="judgment_exactly_one_judge_or_voter",
            ),
            models.UniqueConstraint(
                fields=["match", "judge", "presentation", "repeat"],
                condition=Q(judge__isnull=False),
                name="judgment_unique_llm",
            ),
            models.UniqueConstraint(
                fields=["match", "voter", "presentation", "repeat"],
                condition=Q(voter__isnull=False),
                name="judgment_unique_human",
            ),
            models.UniqueConstraint(
                fields=["voter", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="judgment_unique_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(winner__isnull=True) | Q(winner__in=["a", "b", "tie", "bothbad"]),
                name="judgment_winner_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="ok") | ~Q(kind="pairwise") | Q(winner__isnull=False),
                name="judgment_ok_pairwise_has_winner",
            ),
            models.CheckConstraint(
                condition=~Q(status="ok") | ~Q(kind="ranking") | Q(ranking__isnull=False),
                name="judgment_ok_ranking_has_ranking",
            ),
            models.CheckConstraint(
                condition=~Q(status="ok") | ~Q(kind="score") | Q(score__isnull=False),
                name="judgment_ok_score_has_score",
            ),
            models.CheckConstraint(
                condition=Q(status="ok") | Q(winner__isnull=True),
                name="judgment_failed_has_no_winner",
            ),
            models.CheckConstraint(
                condition=Q(strength__in=[1, 2]), name="judgment_strength_1_or_2"
            ),
            models.CheckConstraint(condition=Q(weight__gte=1), name="judgment_weight_positive"),
            models.CheckConstraint(
                condition=Q(preference__isnull=True)
                | (Q(preference__gte=1) & Q(preference__lte=2)),
                name="judgment_preference_in_1_2",
            ),
            models.CheckConstraint(
                condition=Q(voted_at__isnull=True)
                | Q(shown_at__isnull=True)
                | Q(voted_at__gte=F("shown_at")),
                name="judgment_voted_after_shown",
            ),
        ]
        indexes = [
            models.Index(fields=["judge", "status"], name="judgment_judge_status_idx"),
            models.Index(fields=["voter", "created_at"], name="judgment_voter_idx"),
            models.Index(
                fields=["content_key"],
                condition=~Q(content_key=""),
                name="judgment_content_key_idx",
            ),
        ]

    def __str__(self):
        who = f"judge {self.judge_id}" if self.judge_id else f"voter {self.voter_id}"
        return f"{who} on match {self.match_id}: {self.winner or self.status}"


class LeaderboardSnapshot(models.Model):
    """A fitted leaderboard for one scope, kept as history."""

    scope = models.CharField(
        max_length=300, db_index=True, help_text="Canonical scope key, e.g. set=pandalm|by=humans."
    )
    prompt_set = models.ForeignKey(
        PromptSet, null=True, blank=True, on_delete=models.CASCADE, related_name="snapshots"
    )
    method = models.CharField(max_length=32, default="bt")
    rows = models.JSONField(
        help_text="Per contestant: model, rating, ci_lower, ci_upper, rank_ub, votes, win_rate."
    )
    n_votes = models.PositiveIntegerField(default=0)
    n_models = models.PositiveIntegerField(default=0)
    graph = models.JSONField(default=dict, blank=True, help_text="Comparison-graph health report.")
    params = models.JSONField(default=dict, blank=True)
    fit_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["scope", "-created_at"], name="snapshot_scope_latest_idx")]
        get_latest_by = "created_at"

    def __str__(self):
        return f"{self.scope} @ {self.created_at:%Y-%m-%d %H:%M}"


class BoardState(models.Model):
    """Whether a leaderboard scope needs a refit: the debounce and claim flag for refit tasks.

    A new judgment bumps ``requested_at``; a refit task claims the scope with a one-row
    conditional update (``claimed_at`` null or stale), fits, then records the
    ``requested_at`` it fitted up to. Many votes inside the debounce window cost one fit.
    """

    scope = models.CharField(max_length=300, unique=True)
    requested_at = models.DateTimeField()
    fitted_up_to = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.scope


class PairOutcomeCount(models.Model):
    """Running vote counts per (prompt set, voter source, category, slot pair, winner, order).

    Bumped in the same transaction as every pairwise judgment and rebuilt from the raw
    judgments after an import, so a refit reads O(models^2) cells instead of scanning
    every vote. ``source`` is "human" or "judge:<id>".
    """

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="pair_counts")
    source = models.CharField(max_length=40)
    category = models.CharField(max_length=100, blank=True)
    contestant_a = models.ForeignKey(Contestant, on_delete=models.CASCADE, related_name="+")
    contestant_b = models.ForeignKey(Contestant, on_delete=models.CASCADE, related_name="+")
    winner = models.CharField(max_length=8)
    a_first = models.BooleanField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "prompt_set",
                    "source",
                    "category",
                    "contestant_a",
                    "contestant_b",
                    "winner",
                    "a_first",
                ],
                name="pair_count_unique_cell",
            ),
            models.CheckConstraint(condition=Q(count__gte=0), name="pair_count_non_negative"),
        ]
