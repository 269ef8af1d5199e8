from django.urls import path, register_converter

from arena import views


class ModelName:
    """Any model name, "/" and line breaks included (the path converter stops at a line
    break, and reverse() of a name it cannot match would fail the whole page)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelName, "model_name")

urlpatterns = [
    path("", views.leaderboard, name="leaderboard"),
    path("battle/", views.battle, name="battle"),
    path("battle/<uuid:battle_id>/stream", views.battle_stream, name="battle_stream"),
    path("battles/<uuid:battle_id>/", views.battle_permalink, name="battle_permalink"),
    path("side-by-side/", views.side_by_side, name="side_by_side"),
    # Any model name: reverse() percent-escapes it, the server unescapes it.
    path("models/<model_name:name>/", views.model_page, name="model_page"),
]
