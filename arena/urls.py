from django.urls import path

from arena import views
from arena.api import api

urlpatterns = [
    path("", views.leaderboard, name="leaderboard"),
    path("api/", api.urls),
]
