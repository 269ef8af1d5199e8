"""Annotation campaigns (issue 20 part 1) with real Celery workers: assignments handed out to
r annotators each, expiry and reassignment, gold accuracy, no identity on the annotator's
page, each annotator's own queue only."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from arena.boards import BoardScope, rebuild_pair_counts, scope_counts
from arena.models import (
    Assignment,
    BoardState,
    CampaignItem,
    Judgment,
    MatchSlot,
    PairOutcomeCount,
    Voter,
)
from arena.vocabulary import WINNERS, parse_presentation
from config.celery import app
from judges.campaigns import open_campaign
from judges.judging import run_scope
from tests.factories import staff_user
from tests.integration.campaign_world import MODELS, annotators, run_with_matches, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def run_labels(run):
    """The human labels on the run's matches (what the human-anchored board reads)."""
    return Judgment.objects.filter(match__run=run, voter__isnull=False, status="ok")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def next_item(client, campaign, timeout=20.0) -> dict:
    """The annotator's next item, waiting while the workers hand one out."""

    def ready():
        data = client.get(f"/api/campaigns/{campaign.pk}/next").json()
        return data if data["state"] != "waiting" else None

    return wait_for(ready, timeout, "a hand-out")


def answer(client, item, **choice):
    body = {"idempotency_key": uuid.uuid4().hex, **choice}
    return client.post(
        f"/api/campaigns/assignments/{item['id']}/answer",
        json.dumps(body),
        content_type="application/json",
    )


def right_answer(item) -> str:
    """The gold answer in the order the item was shown (the test may read the database)."""
    assignment = Assignment.objects.select_related("item__match").get(public_id=item["id"])
    gold = assignment.item.match.gold_winner
    if gold in ("", "tie"):  # a regular item: any answer
        return gold or "a"
    shown = parse_presentation(assignment.presentation)
    return WINNERS[shown.index(WINNERS.index(gold))]


def test_it_hands_each_item_to_r_annotators_balanced_and_keeps_labels_off_the_boards(
    celery_worker,
):
    run, matches = run_with_matches(12)
    pool = annotators(4)
    campaign = open_campaign(run, pool, redundancy=2, gold_rate=0.0, queue_size=2)
    clients = [logged_in(user) for user in pool]
    finished = set()
    while len(finished) < len(clients):  # round robin: each answers one item per turn
        for i, client in enumerate(clients):
            if i in finished:
                continue
            data = next_item(client, campaign)
            if data["state"] == "finished":
                finished.add(i)
                continue
            assert answer(client, data["item"], winner="a").status_code == 200

    labels = run_labels(run)
    assert labels.count() == 12 * 2
    per_match = {}
    for match_id, voter_id in labels.values_list("match_id", "voter_id"):
        per_match.setdefault(match_id, set()).add(voter_id)
    assert all(len(voters) == 2 for voters in per_match.values()) and len(per_match) == 12
    per_voter = sorted(labels.values_list("voter_id", flat=True))
    counts = [per_voter.count(v) for v in set(per_voter)]
    assert len(counts) == 4 and max(counts) - min(counts) <= 1
    assert set(Voter.objects.filter(judgments__in=labels).values_list("kind", flat=True)) == {
        "annotator"
    }
    # the answers were "a" in the order shown: stored in slot terms, as presented
    for judgment in labels:
        assert judgment.winner == WINNERS[parse_presentation(judgment.presentation)[0]]
        assert judgment.voted_at >= judgment.shown_at
    # the run's board is asked for a refit: its human-anchored standings read the labels
    assert BoardState.objects.filter(scope=run_scope(run).key).exists()
    # on no board: no running count, no human or run board, not after a rebuild either
    assert not PairOutcomeCount.objects.exists()
    for by in ("humans", "all", f"run:{run.pk}"):
        assert not Judgment.objects.in_scope(BoardScope("camp", by)).exists()
    rebuild_pair_counts(run.prompt_set)
    assert not PairOutcomeCount.objects.exists()
    for by in ("humans", "all", f"run:{run.pk}"):
        assert scope_counts(BoardScope("camp", by)).weight.sum() == 0


def test_an_expired_assignment_is_handed_to_someone_else(celery_worker):
    run, matches = run_with_matches(1)
    slow, quick = annotators(2)
    campaign = open_campaign(run, [slow, quick], redundancy=1, gold_rate=0.0, queue_size=1)
    slow_client, quick_client = logged_in(slow), logged_in(quick)
    wait_for(lambda: Assignment.objects.filter(item__campaign=campaign).exists())
    holder = Assignment.objects.get(item__campaign=campaign)
    first, other = (
        (slow_client, quick_client) if holder.member.user == slow else (quick_client, slow_client)
    )
    item = next_item(first, campaign)
    assert item["state"] == "item"
    assert next_item(other, campaign)["state"] == "finished"  # r = 1: nothing for the other

    # time passes: the beat's expiry task, run by the worker, hands the item out again
    Assignment.objects.filter(pk=holder.pk).update(expires_at=holder.handed_at)
    app.send_task("judges.tasks.expire_assignments")
    wait_for(lambda: Assignment.objects.filter(item__campaign=campaign).count() == 2)
    again = next_item(other, campaign)
    assert again["state"] == "item" and again["item"]["id"] != item["item"]["id"]
    assert again["item"]["prompt"] == item["item"]["prompt"]  # the same item
    late = answer(first, item["item"], winner="b")
    assert late.status_code == 410
    assert not Judgment.objects.exists()
    assert answer(other, again["item"], winner="tie").status_code == 200
    assert next_item(first, campaign)["state"] == "finished"
    statuses = sorted(Assignment.objects.values_list("status", flat=True))
    assert statuses == ["done", "expired"]
    assert Judgment.objects.get().winner == "tie"


def test_gold_items_measure_each_annotators_accuracy(celery_worker):
    run, matches = run_with_matches(16, n_gold=8)
    careful, careless, third = annotators(3)
    campaign = open_campaign(
        run, [careful, careless, third], redundancy=2, gold_rate=0.4, queue_size=2
    )
    gold_ids = set(
        CampaignItem.objects.filter(campaign=campaign, gold=True).values_list("pk", flat=True)
    )
    assert len(gold_ids) == 8
    clients = {careful: logged_in(careful), careless: logged_in(careless), third: logged_in(third)}
    finished = set()
    while len(finished) < 3:
        for user, client in clients.items():
            if user in finished:
                continue
            data = next_item(client, campaign)
            if data["state"] == "finished":
                finished.add(user)
                continue
            right = right_answer(data["item"])
            if user == careless:
                choice = {"a": "b", "b": "a", "tie": "a"}[right]
            else:
                choice = right if right != "tie" else "a"
            assert answer(client, data["item"], winner=choice).status_code == 200

    staff = logged_in(staff_user())
    report = staff.get(f"/api/campaigns/{campaign.pk}/progress").json()
    rows = {row["username"]: row for row in report["annotators"]}
    assert rows["annotator0"]["gold_answers"] >= 4
    assert rows["annotator0"]["gold_accuracy"] == 1.0
    assert rows["annotator1"]["gold_answers"] >= 4
    assert rows["annotator1"]["gold_accuracy"] == 0.0
    assert any("gold accuracy" in flag for flag in rows["annotator1"]["flags"])
    assert not any("gold accuracy" in flag for flag in rows["annotator0"]["flags"])
    done = Assignment.objects.filter(item__campaign=campaign, status="done")
    for user in (careful, careless, third):  # the gold share is kept near the rate
        mine = done.filter(member__user=user)
        assert abs(mine.filter(item__gold=True).count() - 0.4 * mine.count()) <= 1.5
    cov = report["coverage"]
    assert (cov["items"], cov["items_done"], cov["answers"]) == (8, 8, 16)
    assert report["alpha"]["n"] == 8
    page = staff.get(f"/campaigns/{campaign.pk}/")
    assert page.status_code == 200 and b"annotator1" in page.content


def test_the_annotator_page_says_nothing_of_who_wrote_what(celery_worker):
    run, matches = run_with_matches(2, n_kwise=1, k=3)
    (user,) = annotators(1)
    campaign = open_campaign(
        run, [user], redundancy=1, gold_rate=0.0, queue_size=3, guidelines="Prefer **facts**."
    )
    client = logged_in(user)
    page = client.get(f"/annotate/{campaign.pk}/")
    assert page.status_code == 200
    assert b"<strong>facts</strong>" in page.content  # the guidelines, rendered
    secrets = [*MODELS]
    for match in matches:
        secrets += [str(match.public_id), f"match {match.pk}"]
        for slot in MatchSlot.objects.filter(match=match):
            secrets += [f'"output_id": {slot.output_id}', f'"contestant": {slot.contestant_id}']
    seen_k = set()
    while True:
        data = next_item(client, campaign)
        if data["state"] == "finished":
            break
        raw = json.dumps(data)
        text = page.content.decode() + raw
        assert not [s for s in secrets if s in text]
        item = data["item"]
        assert set(item) == {"id", "k", "prompt", "prompt_html", "answers", "expires_at"}
        assert all(set(a) == {"text", "html"} for a in item["answers"])
        # nothing in the texts says which writer is where beyond what the item shows
        assert "<strong>" in item["prompt_html"]
        seen_k.add(item["k"])
        if item["k"] == 2:
            assert answer(client, item, winner="a").status_code == 200
        else:
            assert answer(client, item, ranking=[2, 1, 3]).status_code == 200
    assert seen_k == {2, 3}
    ranked = Judgment.objects.get(kind="ranking")
    shown = parse_presentation(ranked.presentation)
    assert [ranked.ranking[slot] for slot in shown] == [2, 1, 3]  # stored in slot terms


def test_an_annotator_sees_only_their_own_queue(celery_worker):
    run, matches = run_with_matches(3)
    member, outsider = annotators(2)
    campaign = open_campaign(run, [member], redundancy=1, gold_rate=0.0)
    mine = next_item(logged_in(member), campaign)
    assert mine["state"] == "item"
    other = logged_in(outsider)
    assert other.get(f"/api/campaigns/{campaign.pk}/next").status_code == 404
    assert other.get(f"/annotate/{campaign.pk}/").status_code == 404
    assert answer(other, mine["item"], winner="a").status_code == 404
    assert other.get(f"/api/campaigns/{campaign.pk}/progress").status_code == 403
    assert other.get(f"/campaigns/{campaign.pk}/").status_code == 403
    anonymous = Client()
    assert anonymous.get(f"/api/campaigns/{campaign.pk}/next").status_code == 401
    assert answer(anonymous, mine["item"], winner="a").status_code == 401
    assert anonymous.get(f"/annotate/{campaign.pk}/").status_code == 302
    assert not Judgment.objects.exists()
    # a bad ballot writes nothing either; the owner's answer goes through once
    owner = logged_in(member)
    assert answer(owner, mine["item"], winner="left").status_code == 400
    assert answer(owner, mine["item"], ranking=[1, 2]).status_code == 400
    assert answer(owner, mine["item"], winner="b").status_code == 200
    assert answer(owner, mine["item"], winner="a").status_code == 409
    assert Judgment.objects.count() == 1
    staff = logged_in(staff_user())
    assert staff.get(f"/api/campaigns/{campaign.pk}/progress").status_code == 200
    assert staff.get("/annotate/").status_code == 200


def test_a_campaign_that_cannot_work_is_refused_and_writes_nothing():
    from arena.errors import Refusal  # local: only this test raises it
    from arena.models import AnnotationCampaign  # local: only this test reads it

    run, matches = run_with_matches(2, n_gold=2)
    other_run, other_matches = run_with_matches(1)
    pool = annotators(2)
    with pytest.raises(Refusal, match="redundancy"):
        open_campaign(run, pool, redundancy=3)
    with pytest.raises(Refusal, match="no item to judge"):
        open_campaign(run, pool, redundancy=1)
    with pytest.raises(Refusal, match="campaign's run"):
        open_campaign(run, pool, matches=[*matches, *other_matches], redundancy=1)
    with pytest.raises(Refusal, match="gold_rate"):
        open_campaign(other_run, pool, gold_rate=1.0, redundancy=1)
    assert not AnnotationCampaign.objects.exists()


def test_the_runs_api_opens_a_campaign_over_chosen_matches():
    from judges.tokens import create_token  # the runs API's bearer token

    run, matches = run_with_matches(4, n_gold=1)
    annotators(2)
    token = create_token("campaigns")[1]
    body = {
        "run": run.pk,
        "annotators": ["annotator0", "annotator1"],
        "matches": [m.pk for m in matches[:3]],
        "redundancy": 2,
        "gold_rate": 0.2,
        "guidelines": "Be fair.",
    }
    url = "/api/campaigns"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    anonymous = Client().post(url, json.dumps(body), content_type="application/json")
    assert anonymous.status_code == 401
    created = Client().post(url, json.dumps(body), content_type="application/json", **auth)
    assert created.status_code == 201, created.content
    out = created.json()
    assert out["annotate_url"] == f"/annotate/{out['id']}/"
    items = CampaignItem.objects.filter(campaign_id=out["id"])
    assert sorted(items.values_list("match_id", "gold")) == [
        (matches[0].pk, True),
        (matches[1].pk, False),
        (matches[2].pk, False),
    ]
    for bad, field in (
        ({"annotators": ["annotator0", "nobody"]}, "annotators"),
        ({"run": run.pk + 1000}, "run"),
        ({"redundancy": 3}, "redundancy"),
        ({"matches": [matches[0].pk]}, "matches"),  # gold only
        ({"gold_rate": -0.1}, "gold_rate"),
        ({"name": "n" * 201}, "name"),
        ({"assignment_seconds": 2**40}, "assignment_seconds"),
        ({"matches": [2**63]}, "matches"),
    ):
        refused = Client().post(
            url, json.dumps({**body, **bad}), content_type="application/json", **auth
        )
        assert refused.status_code in (400, 404) and refused.json()["field"] == field
    assert CampaignItem.objects.count() == 3


def test_staff_see_a_campaign_in_the_admin_which_opens_none():
    run, matches = run_with_matches(2)
    pool = annotators(2)
    campaign = open_campaign(run, pool, redundancy=1, gold_rate=0.0)
    admin_user = staff_user()
    admin_user.is_superuser = True
    admin_user.save()
    staff = logged_in(admin_user)
    page = staff.get(f"/admin/arena/annotationcampaign/{campaign.pk}/change/")
    assert page.status_code == 200 and b"annotator1" in page.content
    assert staff.get("/admin/arena/annotationcampaign/add/").status_code == 403


def test_a_second_campaign_on_the_same_matches_stores_repeats_and_a_closed_one_stops(celery_worker):
    run, matches = run_with_matches(1)
    (user,) = annotators(1)
    client = logged_in(user)
    labels = []
    for _ in range(2):
        campaign = open_campaign(run, [user], redundancy=1, gold_rate=0.0)
        data = next_item(client, campaign)
        # pin both to one order: the same person, match and order twice
        Assignment.objects.filter(public_id=data["item"]["id"]).update(presentation="0,1")
        assert answer(client, data["item"], winner="a").status_code == 200
        labels.append(Judgment.objects.latest("pk"))
    assert [j.repeat for j in labels] == [0, 1]
    assert run_labels(run).count() == 2

    closed = open_campaign(run, [user], redundancy=1, gold_rate=0.0)
    data = next_item(client, closed)
    closed.status = "closed"
    closed.save()
    assert answer(client, data["item"], winner="a").status_code == 410
    assert client.get(f"/api/campaigns/{closed.pk}/next").json()["state"] == "finished"
    assert run_labels(run).count() == 2


def test_the_report_and_the_queue_read_a_few_queries_however_many_answers(
    django_assert_max_num_queries,
):
    from judges import campaigns  # local: the use cases called directly, no workers here

    run, matches = run_with_matches(12, n_gold=3)
    pool = annotators(5)
    campaign = open_campaign(run, pool, redundancy=3, gold_rate=0.2, queue_size=4)
    members = {m.user_id: m for m in campaign.members.select_related("campaign", "voter")}
    answered = None
    while answered != 0:  # hand out, each annotator answers one, until nobody has work
        campaigns.hand_out(campaign.pk)
        answered = 0
        for user in pool:
            data = campaigns.next_item(members[user.pk])
            if data["item"]:
                ballot = {"winner": "a", "idempotency_key": uuid.uuid4().hex}
                campaigns.answer(user, uuid.UUID(data["item"]["id"]), ballot)
                answered += 1
    assert run_labels(run).count() > 9 * 3  # and gold answers
    with django_assert_max_num_queries(8):
        report = campaigns.campaign_report(campaign)
    assert report["coverage"]["items_done"] == 9
    assert sum(row["answers"] for row in report["annotators"]) == run_labels(run).count()
    with django_assert_max_num_queries(7):
        campaigns.next_item(members[pool[0].pk])


def test_expiry_is_a_task_on_the_beat_schedule(settings):
    from judges import campaigns  # local: the task names it queues

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["arena-campaign-expiry"]
    assert entry["task"] == campaigns.EXPIRE and campaigns.EXPIRE in app.tasks
    assert entry["schedule"] == settings.ARENA_CAMPAIGN_EXPIRY_SECONDS


def test_a_campaign_over_the_runs_anchor_selection_takes_its_chosen_matches():
    from arena.errors import Refusal  # local: only these tests raise it
    from arena.models import AnnotationCampaign, MatchAnchor  # local: only this test

    run, matches = run_with_matches(5)
    pool = annotators(2)
    with pytest.raises(Refusal, match="no anchor selection"):
        open_campaign(run, pool, matches="anchors", redundancy=1)
    assert not AnnotationCampaign.objects.exists()
    MatchAnchor.objects.bulk_create(
        MatchAnchor(match=m, run=run, stratum="uniform", probability=0.4, chosen=i in (1, 3))
        for i, m in enumerate(matches)
    )
    campaign = open_campaign(run, pool, matches="anchors", redundancy=1, gold_rate=0.0)
    assert sorted(campaign.items.values_list("match_id", flat=True)) == sorted(
        [matches[1].pk, matches[3].pk]
    )


def test_a_set_whose_only_human_judgments_are_labels_offers_no_human_board(celery_worker):
    from arena.models import Match, PromptSet
    from arena.services import default_scopes

    run, matches = run_with_matches(2)
    (user,) = annotators(1)
    campaign = open_campaign(run, [user], redundancy=1, gold_rate=0.0, queue_size=2)
    client = logged_in(user)
    while (data := next_item(client, campaign))["state"] != "finished":
        assert answer(client, data["item"], winner="a").status_code == 200
    assert run_labels(run).count() == 2

    def choices():
        (camp,) = [s for s in Client().get("/api/prompt-sets").json() if s["slug"] == "camp"]
        return [b["by"] for b in camp["boards"]]

    # the labels are on no public board: no "Human votes" choice, nor a board kept fresh
    assert choices() == [f"run:{run.pk}"]
    assert [s.by for s in default_scopes(run.prompt_set)] == []
    page = Client().get("/", {"set": "camp"}).content.decode()
    assert 'value="humans"' not in page and "no-human-votes" not in page
    # asked for all the same (an old link): the page says why it is empty
    page = Client().get("/", {"set": "camp", "by": "humans"}).content.decode()
    assert 'id="no-human-votes"' in page and "annotators' labels" in page
    assert '<option value="humans" selected>Human votes (none yet)</option>' in page

    # one crowd vote on a match of the set's own (not a run's): the human board has a vote
    crowd = Match.objects.create(
        prompt_set=PromptSet.objects.get(slug="camp"),
        prompt=matches[0].prompt,
        origin=Match.Origin.IMPORT,
        external_id="crowd",
    )
    for slot in MatchSlot.objects.filter(match=matches[0]):
        MatchSlot.objects.create(
            match=crowd, position=slot.position, contestant=slot.contestant, output=slot.output
        )
    voter = Voter.objects.create(label="crowd:1", kind=Voter.Kind.IMPORTED)
    Judgment.objects.create(match=crowd, voter=voter, winner="b")
    assert choices() == ["humans", f"run:{run.pk}"]
    assert [s.by for s in default_scopes(run.prompt_set)] == ["humans"]
    page = Client().get("/", {"set": "camp", "by": "humans"}).content.decode()
    assert 'value="humans"' in page and "no-human-votes" not in page
