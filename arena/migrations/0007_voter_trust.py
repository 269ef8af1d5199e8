# Issue 13: voter trust. Where a voter's votes are counted (the public "human" cells or
# the "human:flagged" ones), its trust and its last anomaly score (arena.trust).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("arena", "0006_voter_network_hash"),
    ]

    operations = [
        migrations.AddField(
            model_name="voter",
            name="counted_flagged",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="voter",
            name="trust",
            field=models.FloatField(default=0.0, help_text="0..1: login, age, agreement (arena.trust)."),
        ),
        migrations.AddField(
            model_name="voter",
            name="anomaly",
            field=models.FloatField(default=0.0, help_text="Last anomaly score; >= 1 flags."),
        ),
    ]
