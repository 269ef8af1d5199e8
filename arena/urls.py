from django.urls import path

from arena import views

urlpatterns = [
    path("", views.leaderboard, name="leaderboard"),
    path("battle/", views.battle, name="battle"),
    path("battle/<uuid:battle_id>/stream", views.battle_stream, name="battle_stream"),
    path("vendor/plotly.min.js", views.plotly_js, name="plotly_js"),
]
