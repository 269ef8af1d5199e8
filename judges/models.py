"""LLM judges (versioned configurations) and the evaluation runs that use them."""

import hashlib
import json

from django.conf import settings
from django.db import models
from django.db.models import Q

from judges.perturbations import PERTURBATIONS

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
    price_per_1k_prompt = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    price_per_1k_completion = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
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

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=200)
    prompt_set = models.ForeignKey("arena.PromptSet", on_delete=models.PROTECT, related_name="runs")
    judge = models.ForeignKey(Judge, on_delete=models.PROTECT, related_name="runs")
    contestants = models.ManyToManyField("arena.Contestant", related_name="runs")
    design = models.CharField(max_length=32, choices=Design.choices, default=Design.ALL_PAIRS)
    design_params = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"anchor": "gpt-4-0314", "rounds": 5}.'
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
    perturbation = models.CharField(
        max_length=16,
        blank=True,
        choices=[(kind, kind.replace("_", " ")) for kind in PERTURBATIONS],
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

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(repeats__gte=1), name="run_repeats_positive"),
        ]

    def __str__(self):
        return self.name


class ApiToken(models.Model):
    """A bearer token for the runs API. Only its sha256 is stored; the token is shown once."""

    name = models.CharField(max_length=100, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters, to recognise a token."
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"
