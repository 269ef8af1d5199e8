"""Data for the K-wise run page's browser test: 5 contestants and a listwise judge behind
the fake OpenAI-compatible server (tests/integration/runs_world.py), a pending K-wise run,
and a staff user to start it."""

from django.contrib.auth.models import User

from judges.runs import create_run
from tests.e2e.seed import STAFF_PASSWORD, STAFF_USER
from tests.integration.runs_world import make_world


def seed(base_url: str) -> None:
    User.objects.create_user(STAFF_USER, password=STAFF_PASSWORD, is_staff=True)
    prompt_set, contestants, judge = make_world(
        base_url, n_models=5, n_prompts=4, mode="listwise", logprobs=True
    )
    create_run(
        prompt_set=prompt_set,
        judge=judge,
        contestants=contestants,
        design="kwise_groups",
        design_params={"k": 3},
        name="K-wise e2e run",
    )
