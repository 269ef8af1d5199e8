"""Judge and EvaluationRun move from the judges app to the arena app (state only: their
tables keep their names, judges_judge, judges_evaluationrun and its contestants table)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0004_judgment_content_key"),
        ("judges", "0003_perturbation_runs"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="EvaluationRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        (
                            "design",
                            models.CharField(
                                choices=[
                                    ("all_pairs", "All pairs (round robin)"),
                                    ("anchor", "Fixed anchor / baseline"),
                                    ("mediocre_anchor", "Anchor by the mediocrity rule"),
                                    ("single_elimination", "Seeded single elimination"),
                                    ("swiss", "Swiss rounds"),
                                    ("adaptive", "Adaptive (expected information)"),
                                ],
                                default="all_pairs",
                                max_length=32,
                            ),
                        ),
                        (
                            "design_params",
                            models.JSONField(
                                blank=True,
                                default=dict,
                                help_text='e.g. {"anchor": "gpt-4-0314", "rounds": 5}.',
                            ),
                        ),
                        ("max_prompts", models.PositiveIntegerField(blank=True, null=True)),
                        (
                            "budget_calls",
                            models.PositiveIntegerField(
                                blank=True, help_text="Upper bound on judge calls.", null=True
                            ),
                        ),
                        ("repeats", models.PositiveSmallIntegerField(default=1)),
                        (
                            "tag",
                            models.CharField(
                                blank=True,
                                help_text="Perturbation or experiment tag (swap, padding, name-cue ...).",
                                max_length=100,
                            ),
                        ),
                        ("seed", models.IntegerField(default=0)),
                        (
                            "perturbation",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("swap", "swap"),
                                    ("padding", "padding"),
                                    ("authority", "authority"),
                                    ("model_name", "model name"),
                                    ("refinement", "refinement"),
                                    ("repeat", "repeat"),
                                ],
                                help_text="Bias audit: judge the baseline run's comparisons again with this change (judges/perturbations.py); the run waits until its baseline is done.",
                                max_length=16,
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("running", "Running"),
                                    ("done", "Done"),
                                    ("failed", "Failed"),
                                    ("cancelled", "Cancelled"),
                                ],
                                db_index=True,
                                default="pending",
                                max_length=16,
                            ),
                        ),
                        ("planned_calls", models.PositiveIntegerField(default=0)),
                        ("calls_made", models.PositiveIntegerField(default=0)),
                        ("calls_failed", models.PositiveIntegerField(default=0)),
                        (
                            "calls_cached",
                            models.PositiveIntegerField(
                                default=0,
                                help_text="Judgments copied from an identical earlier call (not paid again).",
                            ),
                        ),
                        ("cost", models.DecimalField(decimal_places=6, default=0, max_digits=14)),
                        ("error", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "contestant_ids",
                            models.JSONField(blank=True, default=list, editable=False),
                        ),
                        ("prompt_ids", models.JSONField(blank=True, default=list, editable=False)),
                        ("step", models.CharField(blank=True, editable=False, max_length=32)),
                        ("step_at", models.DateTimeField(blank=True, editable=False, null=True)),
                        ("step_calls", models.PositiveIntegerField(default=0, editable=False)),
                        (
                            "cron",
                            models.CharField(
                                blank=True,
                                help_text='Schedule template: a crontab "minute hour day-of-month month day-of-week" (e.g. 0 3 * * *). Each time it fires, a copy of this run is started.',
                                max_length=100,
                            ),
                        ),
                        (
                            "baseline",
                            models.ForeignKey(
                                blank=True,
                                help_text="The unperturbed run whose comparisons a perturbation run repeats.",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="perturbation_runs",
                                to="arena.evaluationrun",
                            ),
                        ),
                        (
                            "contestants",
                            models.ManyToManyField(
                                db_table="judges_evaluationrun_contestants",
                                related_name="runs",
                                to="arena.contestant",
                            ),
                        ),
                        (
                            "prompt_set",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="runs",
                                to="arena.promptset",
                            ),
                        ),
                        (
                            "template",
                            models.ForeignKey(
                                blank=True,
                                help_text="The schedule template this run was cloned from.",
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="scheduled_runs",
                                to="arena.evaluationrun",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "judges_evaluationrun",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.AlterField(
                    model_name="match",
                    name="run",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="matches",
                        to="arena.evaluationrun",
                    ),
                ),
                migrations.CreateModel(
                    name="Judge",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("version", models.CharField(editable=False, max_length=16)),
                        ("description", models.TextField(blank=True)),
                        (
                            "family",
                            models.CharField(
                                blank=True,
                                help_text="Model family of the judge, for self-preference audits.",
                                max_length=100,
                            ),
                        ),
                        (
                            "base_url",
                            models.URLField(
                                blank=True,
                                help_text="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1. Empty for imported judges.",
                            ),
                        ),
                        (
                            "api_key_env",
                            models.CharField(
                                blank=True,
                                help_text="Name of the environment variable holding the API key (never the key itself).",
                                max_length=100,
                            ),
                        ),
                        ("model", models.CharField(blank=True, max_length=200)),
                        (
                            "mode",
                            models.CharField(
                                choices=[
                                    (
                                        "pairwise",
                                        "Pairwise, Arena-Hard labels ([[A>>B]] .. [[B>>A]])",
                                    ),
                                    (
                                        "pairwise_mtbench",
                                        "Pairwise, MT-Bench labels ([[A]] / [[B]] / [[C]])",
                                    ),
                                    ("listwise", "K-wise listwise ranking"),
                                    ("single", "Single-answer score 1-10"),
                                ],
                                default="pairwise",
                                max_length=32,
                            ),
                        ),
                        ("system_prompt", models.TextField(blank=True)),
                        (
                            "template",
                            models.TextField(
                                blank=True,
                                help_text="Prompt template; empty means the built-in template for the mode.",
                            ),
                        ),
                        ("temperature", models.FloatField(default=0.0)),
                        ("max_tokens", models.PositiveIntegerField(default=1024)),
                        ("seed", models.IntegerField(blank=True, null=True)),
                        (
                            "both_orders",
                            models.BooleanField(
                                default=True,
                                help_text="Judge every pair in both orders (position-bias control).",
                            ),
                        ),
                        (
                            "logprobs",
                            models.BooleanField(
                                default=False,
                                help_text="Ask for logprobs to get verdict probabilities.",
                            ),
                        ),
                        ("timeout_s", models.FloatField(default=60.0)),
                        ("max_retries", models.PositiveSmallIntegerField(default=5)),
                        ("requests_per_minute", models.PositiveIntegerField(default=600)),
                        ("tokens_per_minute", models.PositiveIntegerField(default=1000000)),
                        (
                            "price_per_1k_prompt",
                            models.DecimalField(decimal_places=6, default=0, max_digits=10),
                        ),
                        (
                            "price_per_1k_completion",
                            models.DecimalField(decimal_places=6, default=0, max_digits=10),
                        ),
                        ("is_active", models.BooleanField(default=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "judges_judge",
                        "ordering": ["name", "-created_at"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("name", "version"), name="judge_unique_name_version"
                            )
                        ],
                    },
                ),
                migrations.AddField(
                    model_name="evaluationrun",
                    name="judge",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="runs",
                        to="arena.judge",
                    ),
                ),
                migrations.AlterField(
                    model_name="judgment",
                    name="judge",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="judgments",
                        to="arena.judge",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="evaluationrun",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("repeats__gte", 1)), name="run_repeats_positive"
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
