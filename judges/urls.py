from django.urls import path

from judges import audit_views, campaign_views, run_views

app_name = "judges"

urlpatterns = [
    path("audit/", audit_views.audit_overview, name="audit"),
    path("audit/agreement/", audit_views.audit_agreement, name="audit_agreement"),
    path("audit/integrity/", audit_views.audit_integrity, name="audit_integrity"),
    path("audit/perturbations/", audit_views.audit_perturbations, name="audit_perturbations"),
    path(
        "audit/perturbations/launch/",
        audit_views.audit_perturbations_launch,
        name="audit_perturbations_launch",
    ),
    path("audit/judge/<int:judge_id>/", audit_views.audit_judge, name="audit_judge"),
    path("audit/jury/<int:run_id>/", audit_views.audit_jury, name="audit_jury"),
    path(
        "audit/judge/<int:judge_id>/<slug:chart>.csv",
        audit_views.audit_judge_csv,
        name="audit_judge_csv",
    ),
    path("audit/<slug:page>/<slug:chart>.csv", audit_views.audit_csv, name="audit_csv"),
    path("annotate/", campaign_views.my_campaigns, name="campaigns"),
    path("annotate/login/", campaign_views.login, name="login"),
    path("annotate/<int:campaign_id>/", campaign_views.annotate, name="annotate"),
    path(
        "campaigns/<int:campaign_id>/",
        campaign_views.campaign_progress,
        name="campaign_progress",
    ),
    path("runs/", run_views.run_list, name="runs"),
    path("runs/<int:run_id>/", run_views.run_detail, name="run"),
    path("runs/<int:run_id>/<slug:action>/", run_views.run_action, name="run_action"),
]
