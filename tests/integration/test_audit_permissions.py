"""Every judge-audit page and CSV download is staff only (Doccano-style permission matrix).

Anonymous visitors are sent to the admin login (302, with ``next``); logged-in users who
are not staff get 403; staff get the page or the CSV.
"""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from arena.models import Judge
from tests.integration.audit_sim import simulate

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("/audit/?set=sim", "text/html"),
    ("/audit/?set=sim&category=math", "text/html"),
    ("/audit/agreement/?set=sim", "text/html"),
    ("/audit/integrity/?set=sim", "text/html"),
    ("/audit/perturbations/?set=sim", "text/html"),
    ("/audit/judge/{judge}/?set=sim", "text/html"),
    ("/audit/overview/table.csv?set=sim", "text/csv"),
    ("/audit/overview/first_slot.csv?set=sim", "text/csv"),
    ("/audit/agreement/kappa-humans.csv?set=sim", "text/csv"),
    ("/audit/integrity/voters.csv?set=sim", "text/csv"),
    ("/audit/integrity/board.csv?set=sim", "text/csv"),
    ("/audit/judge/{judge}/first-slot.csv?set=sim", "text/csv"),
    ("/audit/judge/{judge}/position.csv?set=sim", "text/csv"),
]


@pytest.fixture
def audited_judge():
    """The id of a judge with verdicts on the simulated set "sim"."""
    simulate(n=30).store()
    return Judge.objects.get(name="biased").id


@pytest.fixture
def users():
    User = get_user_model()
    return {
        # No password: force_login needs none, and hashing one costs a second per test.
        "staff": User.objects.create(username="staff", is_staff=True),
        "member": User.objects.create(username="member"),
    }


def assert_fetch(client, users, role, url, expected, content_type):
    if role != "anonymous":
        client.force_login(users[role])
    response = client.get(url)
    assert response.status_code == expected, (role, url)
    if expected == 302:
        assert response["Location"].startswith("/admin/login/?next=")
    if expected == 200:
        assert response["Content-Type"].startswith(content_type)
    return response


ROLES = [("anonymous", 302), ("member", 403), ("staff", 200)]


@pytest.mark.parametrize(("url", "content_type"), ENDPOINTS)
def test_it_lets_only_staff_in(client, users, audited_judge, url, content_type):
    # One data set per endpoint, every role in turn (a fresh client per role).
    for role, expected in ROLES:
        assert_fetch(Client(), users, role, url.format(judge=audited_judge), expected, content_type)


def test_an_inactive_staff_member_is_refused(client, users, audited_judge):
    users["staff"].is_active = False
    users["staff"].save()
    client.force_login(users["staff"])
    # Django's ModelBackend refuses inactive users: the session is not authenticated.
    assert client.get("/audit/").status_code == 302


def test_the_nav_link_shows_for_staff_only(client, users, audited_judge):
    client.force_login(users["member"])
    assert b"Judge audit" not in client.get("/").content
    client.force_login(users["staff"])
    assert b'href="/audit/"' in client.get("/").content


@pytest.mark.parametrize(
    "url",
    [
        "/audit/?set=nope",
        "/audit/overview/unknown-chart.csv?set=sim",
        "/audit/nope/table.csv?set=sim",
        "/audit/judge/999999/",
    ],
)
def test_it_answers_404_to_staff_for_what_does_not_exist(client, users, audited_judge, url):
    client.force_login(users["staff"])
    assert client.get(url).status_code == 404
