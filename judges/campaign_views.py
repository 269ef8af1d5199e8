"""Annotation campaign pages: an annotator's queue (their own only) and the staff's
progress page. Each view resolves the campaign for this user, then renders; the queue's
items come from the JSON API (:mod:`judges.campaign_api`)."""

from __future__ import annotations

from django.contrib.auth.views import LoginView, redirect_to_login
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse, reverse_lazy

from arena.errors import Refusal
from arena.models import AnnotationCampaign, CampaignMember
from judges import access, campaigns

staff_only = access.staff_only("Campaign progress is for staff only.")

# Annotators are not staff: they log in here, not at the admin's login.
login = LoginView.as_view(
    template_name="judges/login.html",
    redirect_authenticated_user=True,
    next_page=reverse_lazy("judges:campaigns"),
)


def _to_login(request):
    return redirect_to_login(request.get_full_path(), reverse("judges:login"))


def my_campaigns(request):
    """The campaigns the user annotates in (staff: every campaign, with its progress link)."""
    if not request.user.is_authenticated:
        return _to_login(request)
    mine = (
        CampaignMember.objects.filter(user=request.user, active=True)
        .select_related("campaign")
        .order_by("-campaign__created_at")
    )
    every = AnnotationCampaign.objects.all()[:100] if request.user.is_staff else []
    return render(
        request,
        "judges/campaign_list.html",
        {"nav": "annotate", "memberships": mine, "campaigns": every},
    )


def annotate(request, campaign_id: int):
    """The annotator's page: the campaign's guidelines and their queue, keyboard first."""
    if not request.user.is_authenticated:
        return _to_login(request)
    try:
        member = campaigns.member_of(request.user, campaign_id)
    except Refusal as exc:
        raise Http404(exc.message) from None
    return render(
        request,
        "judges/annotate.html",
        {"nav": "annotate", "campaign": member.campaign},
    )


@staff_only
def campaign_progress(request, campaign_id: int):
    campaign = get_object_or_404(AnnotationCampaign.objects.select_related("run"), pk=campaign_id)
    return render(
        request,
        "judges/campaign_progress.html",
        {"nav": "annotate", "campaign": campaign, "report": campaigns.campaign_report(campaign)},
    )
