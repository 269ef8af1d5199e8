# Issue 13: voters keep the keyed hash of their network (/24, /64); typed prompts are
# private to their author (never served to anyone else) until staff promote them.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0005_judge_and_run_from_judges"),
    ]

    operations = [
        migrations.AddField(
            model_name="voter",
            name="network_hash",
            field=models.CharField(
                blank=True, db_index=True, help_text="Keyed hash of the /24 or /64.", max_length=64
            ),
        ),
        migrations.AddField(
            model_name="prompt",
            name="visibility",
            field=models.CharField(
                choices=[
                    ("public", "Public: may be served to anyone"),
                    ("private", "Private: typed by its author, served to nobody else"),
                ],
                db_index=True,
                default="public",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="prompt",
            name="author",
            field=models.ForeignKey(
                blank=True,
                help_text="The voter who typed this prompt (live battles).",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="typed_prompts",
                to="arena.voter",
            ),
        ),
        # Typed prompts stored before this migration were public by mistake (issue 13).
        migrations.RunSQL(
            "UPDATE arena_prompt SET visibility = 'private' WHERE category = 'typed'",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
