"""The one JSON API object: both apps' routers and the answer to a domain refusal.

config/urls.py mounts it at /api/ (OpenAPI at /api/docs). The apps only define routers:
arena's at the root, judges' runs API at /runs.
"""

from ninja import NinjaAPI

from arena.api import router as arena_router
from arena.errors import Refusal
from judges.api import router as runs_router

api = NinjaAPI(title="Arena API", version="1", urls_namespace="api")


@api.exception_handler(Refusal)
def refusal(request, exc: Refusal):
    """Every refusal of the domain, whichever endpoint: ``{"detail", "field"}``, its status."""
    return api.create_response(
        request, {"detail": exc.message, "field": exc.field}, status=exc.status
    )


api.add_router("", arena_router)
api.add_router("/runs", runs_router)
