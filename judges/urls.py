from django.urls import path

from judges import views

app_name = "judges"

urlpatterns = [
    path("audit/", views.audit_overview, name="audit"),
]
