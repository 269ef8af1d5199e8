"""Websocket routes of both apps (config mounts them; the apps never import each other's)."""

from django.urls import path

from arena.consumers import LeaderboardConsumer
from judges.consumers import RunConsumer

websocket_urlpatterns = [
    path("ws/leaderboard/", LeaderboardConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
]
