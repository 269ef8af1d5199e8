"""Judge and EvaluationRun now live in arena (state only: the tables stay)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0005_judge_and_run_from_judges"),
        ("judges", "0003_perturbation_runs"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="evaluationrun",
                    name="baseline",
                ),
                migrations.RemoveField(
                    model_name="evaluationrun",
                    name="contestants",
                ),
                migrations.RemoveField(
                    model_name="evaluationrun",
                    name="judge",
                ),
                migrations.RemoveField(
                    model_name="evaluationrun",
                    name="prompt_set",
                ),
                migrations.RemoveField(
                    model_name="evaluationrun",
                    name="template",
                ),
                migrations.DeleteModel(
                    name="Judge",
                ),
                migrations.DeleteModel(
                    name="EvaluationRun",
                ),
            ],
            database_operations=[],
        ),
    ]
