from django.urls import path

from judges import run_views, views

app_name = "judges"

urlpatterns = [
    path("audit/", views.audit_overview, name="audit"),
    path("audit/agreement/", views.audit_agreement, name="audit_agreement"),
    path("audit/integrity/", views.audit_integrity, name="audit_integrity"),
    path("audit/perturbations/", views.audit_perturbations, name="audit_perturbations"),
    path(
        "audit/perturbations/launch/",
        views.audit_perturbations_launch,
        name="audit_perturbations_launch",
    ),
    path("audit/judge/<int:judge_id>/", views.audit_judge, name="audit_judge"),
    path(
        "audit/judge/<int:judge_id>/<slug:chart>.csv",
        views.audit_judge_csv,
        name="audit_judge_csv",
    ),
    path("audit/<slug:page>/<slug:chart>.csv", views.audit_csv, name="audit_csv"),
    path("runs/", run_views.run_list, name="runs"),
    path("runs/<int:run_id>/", run_views.run_detail, name="run"),
    path("runs/<int:run_id>/<slug:action>/", run_views.run_action, name="run_action"),
]
