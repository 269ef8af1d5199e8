"""The arena: who competes, on what, what was compared, who said which was better.

Invariants live in the database (unique keys that make retries and re-imports idempotent,
check constraints on verdicts) so that no code path, admin edit or race can break them.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import connection, models
from django.db.models import F, FilteredRelation, Q

from arena import vocabulary
from arena.ratings.scale import parse_anchor
from arena.rubrics import Criterion, parse_criteria
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
    # Shown on the model's public page (/models/<name>/).
    description = models.TextField(blank=True, help_text="What the model is (plain text).")
    organization = models.CharField(
        max_length=200, blank=True, help_text="Who made the model (e.g. Mistral AI)."
    )
    license = models.CharField(max_length=100, blank=True, help_text="e.g. Apache-2.0.")
    link = models.URLField(blank=True, help_text="The model's home page or card (http or https).")
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

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Public: may be served to anyone"
        PRIVATE = "private", "Private: typed by its author, served to nobody else"

    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC, db_index=True
    )
    author = models.ForeignKey(
        "Voter",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="typed_prompts",
        help_text="The voter who typed this prompt (live battles).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "external_id"], name="prompt_unique_per_set"
            ),
        ]

    def __str__(self):
        return f"{self.prompt_set.slug}/{self.external_id}"


class RubricQuerySet(models.QuerySet):
    def for_prompts(self, prompts) -> dict[int, Rubric]:
        """The rubric of each prompt (``Prompt`` rows): its own, else its set's; one query.
        Prompts without either are left out."""
        prompts = list(prompts)
        found = self.filter(
            Q(prompt_id__in={p.id for p in prompts})
            | Q(prompt_set_id__in={p.prompt_set_id for p in prompts})
        )
        own, of_set = {}, {}
        for rubric in found:
            if rubric.prompt_id is not None:
                own[rubric.prompt_id] = rubric
            else:
                of_set[rubric.prompt_set_id] = rubric
        out = {}
        for p in prompts:
            rubric = own.get(p.id) or of_set.get(p.prompt_set_id)
            if rubric is not None:
                out[p.id] = rubric
        return out

    def criterion_names(self, prompt_set_id: int) -> set[str]:
        """Every criterion name of the set's rubrics and its prompts' rubrics."""
        names = set()
        for criteria in self.filter(
            Q(prompt_set_id=prompt_set_id) | Q(prompt__prompt_set_id=prompt_set_id)
        ).values_list("criteria", flat=True):
            for item in criteria if isinstance(criteria, list) else ():
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    names.add(item["name"])
        return names


class Rubric(models.Model):
    """Criteria to judge a prompt's answers by, each with a weight and level descriptions.

    Attached to a prompt set (every prompt of it) or to one prompt, whose own rubric wins
    over its set's (:meth:`RubricQuerySet.for_prompts`). ``criteria`` is the list that
    :func:`arena.rubrics.parse_criteria` checks: ``[{"name", "weight", "description",
    "levels": [lowest .. highest]}]``.
    """

    prompt_set = models.ForeignKey(
        PromptSet, null=True, blank=True, on_delete=models.CASCADE, related_name="rubrics"
    )
    prompt = models.ForeignKey(
        Prompt, null=True, blank=True, on_delete=models.CASCADE, related_name="rubrics"
    )
    criteria = models.JSONField(
        help_text='[{"name": "correctness", "weight": 2, "description": "...", '
        '"levels": ["wrong", "partly right", "right"]}] (names: lower case, unique).'
    )
    source = models.CharField(
        max_length=300, blank=True, help_text="Who wrote it: staff, or the drafting model."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RubricQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(prompt_set__isnull=False) & Q(prompt__isnull=True))
                | (Q(prompt_set__isnull=True) & Q(prompt__isnull=False)),
                name="rubric_set_or_prompt",
            ),
            models.UniqueConstraint(
                fields=["prompt_set"],
                condition=Q(prompt_set__isnull=False),
                name="rubric_one_per_set",
            ),
            models.UniqueConstraint(
                fields=["prompt"], condition=Q(prompt__isnull=False), name="rubric_one_per_prompt"
            ),
        ]

    def __str__(self):
        return f"rubric of {self.prompt or self.prompt_set}"

    def clean(self):
        try:
            parse_criteria(self.criteria)
        except ValueError as exc:
            raise ValidationError({"criteria": str(exc)}) from None

    def parsed(self) -> tuple[Criterion, ...]:
        return parse_criteria(self.criteria)


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
        # A named annotator of annotation campaigns (judges.campaigns): label
        # "annotator:<user id>"; its judgments are labels on run matches, on no board.
        ANNOTATOR = "annotator", "Campaign annotator"

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
    network_hash = models.CharField(
        max_length=64, blank=True, db_index=True, help_text="Keyed hash of the /24 or /64."
    )
    flagged = models.BooleanField(default=False)
    flag_reason = models.CharField(max_length=300, blank=True)
    # Where this voter's votes are counted now (arena.trust): "human:flagged" cells when
    # True, else "human". Follows ``flagged`` within one trust pass (admin edits included).
    counted_flagged = models.BooleanField(default=False)
    trust = models.FloatField(default=0.0, help_text="0..1: login, age, agreement (arena.trust).")
    anomaly = models.FloatField(default=0.0, help_text="Last anomaly score; >= 1 flags.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.label if self.kind != self.Kind.SESSION else f"session {self.label[:8]}…"


# Fields that change what a judge says: a change to any of them is a new judge version.
VERSIONED_FIELDS = (
    "base_url",
    "model",
    "mode",
    "system_prompt",
    "template",
    "temperature",
    "max_tokens",
    "seed",
    "both_orders",
    "logprobs",
)


class Judge(models.Model):
    """An LLM judge configuration. ``version`` is a hash of everything that changes verdicts.

    Judges from imported data (PandaLM's GPT-3.5 verdicts, LLMBar's evaluators) have no
    endpoint; they exist so their verdicts can be audited and ranked like any other.
    """

    class Mode(models.TextChoices):
        PAIRWISE = "pairwise", "Pairwise, Arena-Hard labels ([[A>>B]] .. [[B>>A]])"
        PAIRWISE_MTBENCH = "pairwise_mtbench", "Pairwise, MT-Bench labels ([[A]] / [[B]] / [[C]])"
        LISTWISE = "listwise", "K-wise listwise ranking"
        SINGLE = "single", "Single-answer score 1-10"
        SINGLE_100 = "single_100", "Single-answer score 1-100 (TrustJudge)"
        # issue 15: one pairwise verdict per criterion of the prompt's rubric (arena.rubrics)
        RUBRIC = "rubric", "Pairwise per rubric criterion, weighted total"
        # one level per criterion of the answer shown first; its grade the weighted total
        RUBRIC_SINGLE = "rubric_single", "Pointwise per rubric criterion, weighted total"

    name = models.CharField(max_length=200)
    version = models.CharField(max_length=16, editable=False)
    description = models.TextField(blank=True)
    family = models.CharField(
        max_length=100,
        blank=True,
        help_text="Model family of the judge, for self-preference audits.",
    )
    base_url = models.URLField(
        blank=True,
        help_text="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1. Empty for imported judges.",
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable holding the API key (never the key itself).",
    )
    model = models.CharField(max_length=200, blank=True)
    mode = models.CharField(max_length=32, choices=Mode.choices, default=Mode.PAIRWISE)
    system_prompt = models.TextField(blank=True)
    template = models.TextField(
        blank=True, help_text="Prompt template; empty means the built-in template for the mode."
    )
    temperature = models.FloatField(default=0.0)
    max_tokens = models.PositiveIntegerField(default=1024)
    seed = models.IntegerField(null=True, blank=True)
    both_orders = models.BooleanField(
        default=True, help_text="Judge every pair in both orders (position-bias control)."
    )
    logprobs = models.BooleanField(
        default=False, help_text="Ask for logprobs to get verdict probabilities."
    )
    timeout_s = models.FloatField(default=60.0)
    max_retries = models.PositiveSmallIntegerField(default=5)
    requests_per_minute = models.PositiveIntegerField(default=600)
    tokens_per_minute = models.PositiveIntegerField(default=1_000_000)
    max_concurrency = models.PositiveIntegerField(
        default=32,
        validators=[MinValueValidator(1)],
        help_text="Requests in flight at once to this endpoint, over every worker process.",
    )
    price_per_1k_prompt = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    price_per_1k_completion = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "judges_judge"  # created by the judges app before the model moved here
        ordering = ["name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="judge_unique_name_version")
        ]

    def __str__(self):
        return f"{self.name} [{self.version[:7]}]"

    def compute_version(self) -> str:
        config = {field: getattr(self, field) for field in VERSIONED_FIELDS}
        blob = json.dumps(config, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def save(self, *args, **kwargs):
        self.version = self.compute_version()
        super().save(*args, **kwargs)


class EvaluationRun(models.Model):
    """Contestants x prompt set x judge x design x budget."""

    class Design(models.TextChoices):
        ALL_PAIRS = "all_pairs", "All pairs (round robin)"
        ANCHOR = "anchor", "Fixed anchor / baseline"
        MEDIOCRE_ANCHOR = "mediocre_anchor", "Anchor by the mediocrity rule"
        SINGLE_ELIMINATION = "single_elimination", "Seeded single elimination"
        SWISS = "swiss", "Swiss rounds"
        ADAPTIVE = "adaptive", "Adaptive (expected information)"
        PLACEMENT = "placement", "Place a newcomer on an existing board"
        PRP = "prp", "PRP sorting of each prompt's answers"
        KWISE_GROUPS = "kwise_groups", "K-wise: random groups covering every pair"
        KWISE_WINDOWS = "kwise_windows", "K-wise: sliding windows over the ranking"
        KWISE_ADAPTIVE = "kwise_adaptive", "K-wise: groups drawn by the pairing policy"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200)
    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="runs")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="runs")
    contestants = models.ManyToManyField(
        Contestant, related_name="runs", db_table="judges_evaluationrun_contestants"
    )
    design = models.CharField(max_length=32, choices=Design.choices, default=Design.ALL_PAIRS)
    design_params = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"anchor": "gpt-4-0314", "rounds": 5}.'
    )
    design_report = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="What the design decided and why (e.g. the mediocre anchor's candidates).",
    )
    max_prompts = models.PositiveIntegerField(null=True, blank=True)
    budget_calls = models.PositiveIntegerField(
        null=True, blank=True, help_text="Upper bound on judge calls."
    )
    repeats = models.PositiveSmallIntegerField(default=1)
    tag = models.CharField(
        max_length=100,
        blank=True,
        help_text="Perturbation or experiment tag (swap, padding, name-cue ...).",
    )
    seed = models.IntegerField(default=0)

    class Perturbation(models.TextChoices):  # what judges/perturbations.py changes
        SWAP = "swap", "swap"
        PADDING = "padding", "padding"
        AUTHORITY = "authority", "authority"
        MODEL_NAME = "model_name", "model name"
        REFINEMENT = "refinement", "refinement"
        REPEAT = "repeat", "repeat"

    perturbation = models.CharField(
        max_length=16,
        blank=True,
        choices=Perturbation.choices,
        help_text="Bias audit: judge the baseline run's comparisons again with this change "
        "(judges/perturbations.py); the run waits until its baseline is done.",
    )
    baseline = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="perturbation_runs",
        help_text="The unperturbed run whose comparisons a perturbation run repeats.",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    planned_calls = models.PositiveIntegerField(default=0)
    calls_made = models.PositiveIntegerField(default=0)
    calls_failed = models.PositiveIntegerField(default=0)
    calls_cached = models.PositiveIntegerField(
        default=0, help_text="Judgments copied from an identical earlier call (not paid again)."
    )
    cost = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Frozen when the run starts: design index i is contestant_ids[i] / prompt_ids[i], so
    # replaying the design from stored verdicts sees the same models and prompts.
    contestant_ids = models.JSONField(default=list, blank=True, editable=False)
    prompt_ids = models.JSONField(default=list, blank=True, editable=False)
    # The batch handed to the workers: "<round>:generate" or "<round>:judge", claimed by a
    # compare-and-swap so that two orchestrator steps never dispatch the same batch twice.
    step = models.CharField(max_length=32, blank=True, editable=False)
    step_at = models.DateTimeField(null=True, blank=True, editable=False)
    step_calls = models.PositiveIntegerField(default=0, editable=False)
    cron = models.CharField(
        max_length=100,
        blank=True,
        help_text='Schedule template: a crontab "minute hour day-of-month month day-of-week" '
        "(e.g. 0 3 * * *). Each time it fires, a copy of this run is started.",
    )
    template = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="scheduled_runs",
        help_text="The schedule template this run was cloned from.",
    )
    # A jury run (issue 15): a panel of judges, each call judged by every juror or by a
    # seeded subset per match; the run's board pools their verdicts (arena.ratings.jury).
    jurors = models.ManyToManyField(
        Judge,
        blank=True,
        related_name="jury_runs",
        help_text="The panel of a jury run (empty: the run's judge alone). The run's judge "
        "must be one of them.",
    )
    jury = models.JSONField(
        default=dict,
        blank=True,
        help_text='Jury design: {"size": jurors per match (null: all), "rule": majority | '
        'mean | weighted, "weights_from": humans | gold}; the weights are frozen at start.',
    )

    class Meta:
        db_table = "judges_evaluationrun"  # created by the judges app before the model moved here
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(repeats__gte=1), name="run_repeats_positive"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_jury(self) -> bool:
        """A run judged by a panel (``jury`` set when the run was made with jurors)."""
        return bool(self.jury)


class Match(models.Model):
    """One comparison task over K >= 2 answers to the same prompt, in the slot order shown."""

    class Origin(models.TextChoices):
        ARENA = "arena", "Human arena battle"
        # A battle whose contestants the voter picked and saw named: its votes are counted
        # apart ("human:named") and never enter a board of anonymous votes.
        SIDE_BY_SIDE = "side_by_side", "Side by side, names shown"
        RUN = "run", "Evaluation run"
        IMPORT = "import", "Imported"

    # What the browser sees: an unguessable id, so battles cannot be enumerated.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # db_index=False on a foreign key whose column leads a composite index or unique key
    # (here match_board_idx): that one serves its lookups, one index fewer per row written
    prompt_set = models.ForeignKey(
        PromptSet, on_delete=models.CASCADE, related_name="matches", db_index=False
    )
    # A nullable foreign key is indexed where it is set (match_prompt_idx ...): the rows
    # without one (an imported battle log's) write no entry. "prompt_id = x" implies the
    # condition, so the lookups and cascades by it still use the index.
    prompt = models.ForeignKey(
        Prompt,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="matches",
        db_index=False,
    )
    origin = models.CharField(max_length=16, choices=Origin.choices)
    source = models.CharField(
        max_length=100, blank=True, help_text="Importer or run that created it."
    )
    external_id = models.CharField(max_length=200, blank=True)
    run = models.ForeignKey(  # led by match_run_idx
        EvaluationRun,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="matches",
        db_index=False,
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
        db_index=False,
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
            models.Index(
                fields=["run", "round"], condition=Q(run__isnull=False), name="match_run_idx"
            ),
            models.Index(
                fields=["prompt"], condition=Q(prompt__isnull=False), name="match_prompt_idx"
            ),
            models.Index(
                fields=["owner"], condition=Q(owner__isnull=False), name="match_owner_idx"
            ),
        ]

    def __str__(self):
        return f"match {self.pk} ({self.k}-way, {self.origin})"


class MatchSlot(models.Model):
    # led by slot_unique_position and slot_unique_contestant (see Match.prompt_set)
    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="slots", db_index=False)
    position = models.PositiveSmallIntegerField(help_text="0 = left / first shown.")
    contestant = models.ForeignKey(
        Contestant, on_delete=models.PROTECT, related_name="slots", db_index=False
    )
    output = models.ForeignKey(  # indexed where set (see Match.prompt)
        Output,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="slots",
        db_index=False,
    )

    class Meta:
        ordering = ["match", "position"]
        constraints = [
            models.UniqueConstraint(fields=["match", "position"], name="slot_unique_position"),
            # a contestant once a match; contestant first, so that it also finds a
            # contestant's matches (one index for both: two entries fewer per battle)
            models.UniqueConstraint(fields=["contestant", "match"], name="slot_unique_contestant"),
            models.CheckConstraint(
                condition=Q(position__lt=MAX_SLOTS), name="slot_position_below_max"
            ),
        ]
        indexes = [
            models.Index(
                fields=["output"], condition=Q(output__isnull=False), name="slot_output_idx"
            ),
        ]

    def __str__(self):
        return f"{self.match_id}[{self.position}] {self.contestant_id}"


class JudgmentQuerySet(models.QuerySet):
    def with_slots(self, models_only: bool = False) -> JudgmentQuerySet:
        """Annotate the match's slots 0 and 1 as ``s0`` and ``s1`` (one join each), so that
        ``s0__contestant_id`` or ``s1__output__token_length`` read in the same query.
        ``models_only`` keeps judgments whose both answers come from models (boards)."""
        qs = self.annotate(
            s0=FilteredRelation("match__slots", condition=Q(match__slots__position=0)),
            s1=FilteredRelation("match__slots", condition=Q(match__slots__position=1)),
        )
        if models_only:
            qs = qs.filter(
                s0__contestant__kind=Contestant.Kind.MODEL,
                s1__contestant__kind=Contestant.Kind.MODEL,
            )
        return qs

    def in_scope(self, scope, kind: str = "pairwise") -> JudgmentQuerySet:
        """Successfully parsed judgments of a leaderboard scope (``arena.boards.BoardScope``):
        its prompt set, whose verdicts (humans, judges, one judge, one run, all) and category.
        Pairwise judgments count on 2-way matches only; failures never enter a fit."""
        qs = self.filter(
            match__prompt_set__slug=scope.prompt_set, kind=kind, status=Judgment.Status.OK
        ).exclude(match__origin=Match.Origin.SIDE_BY_SIDE)  # named votes: on no board
        # Annotators' labels (a person's verdict on a run's match, judges.campaigns): on no board.
        qs = qs.exclude(voter__isnull=False, match__origin=Match.Origin.RUN)
        if kind == Judgment.Kind.PAIRWISE:
            qs = qs.filter(match__k=2)
        if scope.by == "humans":
            qs = qs.filter(voter__isnull=False)
        elif scope.by == "judges":
            qs = qs.filter(judge__isnull=False)
        elif scope.judge_id is not None:
            qs = qs.filter(judge_id=scope.judge_id)
        elif scope.run_id is not None:
            qs = qs.filter(match__run_id=scope.run_id)
        if scope.category:
            qs = qs.filter(match__category=scope.category)
        if scope.criterion:  # a criterion's board: the verdicts that name it
            qs = qs.filter(criteria__has_key=scope.criterion)
        return qs


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

    class Winner(models.TextChoices):  # the names of arena.vocabulary
        A = vocabulary.A, "A better"
        B = vocabulary.B, "B better"
        TIE = vocabulary.TIE, "Tie"
        BOTH_BAD = vocabulary.BOTH_BAD, "Both bad"

    # led by judgment_unique_human (see Match.prompt_set)
    match = models.ForeignKey(
        Match, on_delete=models.CASCADE, related_name="judgments", db_index=False
    )
    # led by judgment_judge_status_idx and judgment_voter_idx (see Match.prompt_set)
    judge = models.ForeignKey(
        Judge,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="judgments",
        db_index=False,
    )
    voter = models.ForeignKey(
        Voter,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="judgments",
        db_index=False,
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
    score = models.FloatField(
        null=True,
        blank=True,
        help_text="Single-answer grade of the slot shown first (slot 0 in slot order).",
    )
    criteria = models.JSONField(
        null=True,
        blank=True,
        help_text="Per criterion or aspect, its verdict in slot terms ({name: winner}): a "
        "rubric judge's criteria (winner = their weighted total), a voter's aspect ballots; "
        "a pointwise rubric judge's level per criterion ({name: level}; score = their "
        "weighted total).",
    )
    preference = models.FloatField(
        null=True,
        blank=True,
        help_text="Soft preference in [1, 2] (AlpacaEval); 1 = slot 0 better.",
    )
    presentation = models.CharField(
        max_length=40,
        default=vocabulary.IN_ORDER,
        help_text="Slot order shown to the judge, comma-separated.",
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

    objects = JudgmentQuerySet.as_manager()

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
            # Without a condition, as a judge's rows (no voter) never collide: NULLs are
            # distinct. So it holds every row and leads by match, the match's index.
            models.UniqueConstraint(
                fields=["match", "voter", "presentation", "repeat"],
                name="judgment_unique_human",
            ),
            models.UniqueConstraint(
                fields=["voter", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="judgment_unique_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(winner__isnull=True) | Q(winner__in=vocabulary.WINNERS),
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
            models.Index(  # where set (see Match.prompt): a human vote writes no entry
                fields=["judge", "status"],
                condition=Q(judge__isnull=False),
                name="judgment_judge_status_idx",
            ),
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


class LeaderboardSnapshotQuerySet(models.QuerySet):
    def latest_of(self, scope_key: str) -> LeaderboardSnapshot | None:
        """The newest snapshot of a scope (by creation time, then id), or None."""
        return self.filter(scope=scope_key).order_by("-created_at", "-id").first()


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
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text="The same votes' other standings by method (elo, swiss): "
        "{method, value, rows, n_votes, coefficients, notes}.",
    )
    fit_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LeaderboardSnapshotQuerySet.as_manager()

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


class PairOutcomeCountQuerySet(models.QuerySet):
    def bump(
        self,
        *,
        prompt_set_id: int,
        source: str,
        category: str,
        contestant_a_id: int,
        contestant_b_id: int,
        winner: str,
        a_first: bool,
        count: int = 1,
    ) -> None:
        """Add ``count`` votes to one cell, creating it if new (inside the caller's
        transaction). One upsert statement on SQLite and PostgreSQL, safe against
        concurrent writers of the same cell: the only raw SQL of the vote path."""
        self.bump_many(
            [
                (
                    prompt_set_id,
                    source,
                    category,
                    contestant_a_id,
                    contestant_b_id,
                    winner,
                    a_first,
                    count,
                )
            ]
        )

    def bump_many(self, rows) -> None:
        """Add votes to many cells in one upsert statement: ``rows`` of the
        :data:`PAIR_CELL` values and the count, each cell at most once, in the order the
        caller wants the rows locked (sorted, so that two writers never deadlock)."""
        rows = list(rows)
        table = self.model._meta.db_table
        cell = ", ".join(PAIR_CELL)
        with connection.cursor() as cursor:
            # at most BUMP_ROWS cells a statement: SQLite and PostgreSQL cap the parameters
            for start in range(0, len(rows), BUMP_ROWS):
                chunk = rows[start : start + BUMP_ROWS]
                values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
                cursor.execute(
                    f"INSERT INTO {table} ({cell}, count) VALUES {values} "
                    f"ON CONFLICT ({cell}) DO UPDATE SET count = {table}.count + excluded.count",
                    [value for row in chunk for value in row],
                )


BUMP_ROWS = 1000  # cells per upsert statement (8 parameters each)


# The columns that name one running-count cell (its unique key).
PAIR_CELL = (
    "prompt_set_id",
    "source",
    "category",
    "contestant_a_id",
    "contestant_b_id",
    "winner",
    "a_first",
)


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

    objects = PairOutcomeCountQuerySet.as_manager()

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


# --- annotation campaigns (judges.campaigns) --------------------------------------------


class AnnotationCampaign(models.Model):
    """An evaluation run whose judges are people: named annotators label matches of a run.

    Each item (a match of ``run``) goes to ``redundancy`` annotators, balanced across them;
    gold items (a match with ``gold_winner``) are mixed into every annotator's queue at
    ``gold_rate``. An annotator's verdict is a ``Judgment`` on the run's match by the
    annotator's ``Voter`` (kind ``annotator``): a human judgment on a run match, which no
    board counts as a vote (``JudgmentQuerySet.in_scope``) and the run board's
    human-anchored standings take as a label (``arena.anchoring.run_labels``).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200)
    guidelines = models.TextField(
        blank=True, help_text="What annotators are asked to judge, and how (Markdown)."
    )
    run = models.ForeignKey(
        EvaluationRun,
        on_delete=models.CASCADE,
        related_name="campaigns",
        help_text="The run whose matches people judge.",
    )
    redundancy = models.PositiveSmallIntegerField(default=3, help_text="Annotators per item (r).")
    gold_rate = models.FloatField(
        default=0.1, help_text="Share of an annotator's assignments that are gold items."
    )
    assignment_seconds = models.PositiveIntegerField(
        default=1800, help_text="An assignment not answered by then is handed out again."
    )
    queue_size = models.PositiveSmallIntegerField(
        default=3, help_text="Assignments held ready per annotator."
    )
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="CampaignMember", related_name="campaigns"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lt=1), name="campaign_gold_rate_0_1"
            ),
            models.CheckConstraint(condition=Q(redundancy__gte=1), name="campaign_redundancy_1"),
            models.CheckConstraint(condition=Q(queue_size__gte=1), name="campaign_queue_size_1"),
        ]

    def __str__(self):
        return self.name


class CampaignMember(models.Model):
    """An annotator of the campaign's pool: a Django user and the Voter their labels carry."""

    campaign = models.ForeignKey(
        AnnotationCampaign, on_delete=models.CASCADE, related_name="members"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="campaign_memberships"
    )
    voter = models.ForeignKey(Voter, on_delete=models.PROTECT, related_name="memberships")
    active = models.BooleanField(default=True, help_text="Inactive: gets no new assignments.")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user"], name="member_unique_user"),
        ]

    def __str__(self):
        return f"{self.user} in {self.campaign_id}"


class CampaignItem(models.Model):
    """A match of the campaign's run to be judged; ``gold``: a honeypot with a known answer."""

    campaign = models.ForeignKey(AnnotationCampaign, on_delete=models.CASCADE, related_name="items")
    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="campaign_items")
    gold = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "match"], name="item_unique_match"),
        ]
        indexes = [models.Index(fields=["campaign", "gold"], name="item_campaign_gold_idx")]

    def __str__(self):
        return f"item {self.match_id} of {self.campaign_id}"


class Assignment(models.Model):
    """One item handed to one annotator, with the order its answers are shown in.

    The browser knows it by ``public_id`` only (never the match's ids). Pending until
    answered (done, with its judgment) or until ``expires_at`` passes (expired: the item
    is handed out again, to someone else)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    item = models.ForeignKey(CampaignItem, on_delete=models.CASCADE, related_name="assignments")
    member = models.ForeignKey(CampaignMember, on_delete=models.CASCADE, related_name="assignments")
    presentation = models.CharField(
        max_length=40, help_text="Slot order shown, comma-separated (arena.vocabulary)."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    handed_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    shown_at = models.DateTimeField(null=True, blank=True)
    judgment = models.OneToOneField(
        Judgment, null=True, blank=True, on_delete=models.SET_NULL, related_name="assignment"
    )

    class Meta:
        constraints = [
            # An annotator never gets the same item twice, unless an earlier one expired.
            models.UniqueConstraint(
                fields=["item", "member"],
                condition=~Q(status="expired"),
                name="assignment_unique_live",
            ),
        ]
        indexes = [
            models.Index(fields=["member", "status"], name="assignment_member_idx"),
            models.Index(fields=["status", "expires_at"], name="assignment_expiry_idx"),
        ]

    def __str__(self):
        return f"{self.item} to {self.member_id}: {self.status}"


class MatchAnchor(models.Model):
    """A run's match in its anchor selection (``arena.anchoring``): the matches humans
    should judge to calibrate the run's LLM judge.

    Every match of the run gets a row when the selection is drawn, with its stratum and its
    probability of being chosen, so the human-anchored board can weight each label by
    1 / probability (``arena.ratings.anchored``); ``chosen`` marks the matches drawn.
    Human labels are ``Judgment`` rows by a voter on the chosen matches (or their
    ``Match.gold_winner``).
    """

    match = models.OneToOneField(
        Match, primary_key=True, on_delete=models.CASCADE, related_name="anchor"
    )
    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="anchors")
    stratum = models.CharField(max_length=16, help_text="arena.matchmaking.anchors.STRATA")
    probability = models.FloatField(help_text="Probability that the selection chose it.")
    chosen = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(probability__gt=0) & Q(probability__lte=1),
                name="anchor_probability_in_0_1",
            ),
        ]
        indexes = [models.Index(fields=["run", "chosen"], name="anchor_run_chosen_idx")]

    def __str__(self):
        return f"anchor {self.match_id} ({self.stratum}, p={self.probability:.3f})"
