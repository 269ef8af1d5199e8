"""A campaign for the annotator's browser test: one annotator (with a password), a run of
three pairwise items and one 3-way item (tests/integration/campaign_world.py)."""

from django.contrib.auth import get_user_model

from judges.campaigns import open_campaign
from tests.integration.campaign_world import run_with_matches

USERNAME, PASSWORD = "ann", "annotate-me-please"
STAFF_USER, STAFF_PASSWORD = "boss", "see-everything-please"
GUIDELINES = "Prefer the answer that is **correct**, then the clearer one."


def seed() -> None:
    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD)
    get_user_model().objects.create_user(
        STAFF_USER, password=STAFF_PASSWORD, is_staff=True, is_superuser=True
    )
    run, _ = run_with_matches(3, n_kwise=1, k=3)
    campaign = open_campaign(
        run, [user], redundancy=1, gold_rate=0.0, queue_size=2, guidelines=GUIDELINES
    )
    assert campaign.pk == 1
