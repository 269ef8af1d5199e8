"""The run page's websocket: a run's progress and its provisional board."""

from channels.db import database_sync_to_async

from arena.consumers import JsonFramesConsumer
from arena.events import board_group
from arena.models import EvaluationRun
from judges.events import run_group
from judges.judging import run_scope

# A longer id is past every database's integer range: no such run.
MAX_ID_DIGITS = 18


class RunConsumer(JsonFramesConsumer):
    """Pushes a run's progress ('run.progress') and its provisional board ('board.updated').

    Connect to ``/ws/runs/<id>/``; an unknown run is refused (closed with 4404). A frame
    that is not JSON gets an error message (:class:`arena.consumers.JsonFramesConsumer`).
    """

    async def connect(self):
        run_id = str(self.scope["url_route"]["kwargs"]["run_id"])
        self.run_id = int(run_id) if len(run_id) <= MAX_ID_DIGITS else None
        scope_key = await self._board_scope() if self.run_id is not None else None
        if scope_key is None:
            await self.close(code=4404)
            return
        self.joined = [run_group(self.run_id), board_group(scope_key)]
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "subscribed", "run_id": self.run_id, "scope": scope_key})

    @database_sync_to_async
    def _board_scope(self) -> str | None:
        run = EvaluationRun.objects.select_related("prompt_set").filter(pk=self.run_id).first()
        return run_scope(run).key if run else None

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        pass  # nothing to ask: the run page only listens

    async def run_progress(self, event):
        await self.send_json(event)

    async def board_updated(self, event):
        await self.send_json(
            {key: event[key] for key in ("type", "scope", "snapshot_id", "n_votes")}
        )
