from django.urls import path

from arena import consumers
from judges.consumers import RunConsumer

websocket_urlpatterns = [
    path("ws/leaderboard/", consumers.LeaderboardConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
]
