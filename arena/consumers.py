from channels.generic.websocket import AsyncJsonWebsocketConsumer

from arena.events import board_group


class LeaderboardConsumer(AsyncJsonWebsocketConsumer):
    """Pushes 'board.updated' to every open leaderboard page of a scope.

    The client sends {"subscribe": "<scope>"}; it may follow several scopes.
    """

    async def connect(self):
        self.groups_joined = set()
        await self.accept()

    async def receive_json(self, content, **kwargs):
        scope = content.get("subscribe") if isinstance(content, dict) else None
        if not isinstance(scope, str) or not scope or len(scope) > 300:
            await self.send_json({"type": "error", "message": 'send {"subscribe": "<scope>"}'})
            return
        group = board_group(scope)
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)
        await self.send_json({"type": "subscribed", "scope": scope})

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def board_updated(self, event):
        await self.send_json(
            {key: event[key] for key in ("type", "scope", "snapshot_id", "n_votes")}
        )
