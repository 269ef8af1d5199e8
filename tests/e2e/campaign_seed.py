"""A campaign for the annotator's browser test: one annotator (with a password), a run of
three pairwise items and one 3-way item (tests/integration/campaign_world.py)."""

from django.contrib.auth import get_user_model

from judges.campaigns import open_campaign
from tests.integration.campaign_world import run_with_matches

USERNAME, PASSWORD = "ann", "annotate-me-please"
GUIDELINES = "Prefer the answer that is **correct**, then the clearer one."


def seed() -> None:
    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD)
    run, _ = run_with_matches(3, n_kwise=1, k=3)
    campaign = open_campaign(
        run, [user], redundancy=1, gold_rate=0.0, queue_size=2, guidelines=GUIDELINES
    )
    assert campaign.pk == 1
