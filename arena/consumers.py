"""Websocket consumers of the arena: the live leaderboard, and the base of every JSON one."""

import re

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from arena.events import board_group

_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON's "\ud800": no UTF-8, no group name
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')  # a JSON string (its brackets do not nest)
MAX_FRAME_CHARS = 4096  # a client frame is a small command ({"subscribe": "<scope>"})
MAX_DEPTH = 16  # arrays/objects inside each other


def nesting_depth(text: str) -> int:
    """How deep brackets nest in a JSON text, strings left out; no recursion (a frame of
    100,000 "[" would take Python's JSON decoder to its recursion limit)."""
    depth = deepest = 0
    for char in _STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


class JsonFramesConsumer(AsyncJsonWebsocketConsumer):
    """A JSON consumer that answers a frame it cannot read instead of crashing.

    Channels' JSON consumer decodes every text frame with ``json.loads``: a frame that is
    not JSON (or a binary frame) raised in the consumer, which closed the socket with 1011
    and logged a traceback. Here it gets ``{"type": "error", "message": ...}`` and the
    connection stays open. Frames are small commands: a longer or deeply nested one is
    refused before it is decoded.
    """

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if text_data is None:
            await self.send_error("send JSON text frames, not binary ones")
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_error(f"frame too large: at most {MAX_FRAME_CHARS} characters")
            return
        if nesting_depth(text_data) > MAX_DEPTH:
            await self.send_error(f"not JSON this arena reads: nested deeper than {MAX_DEPTH}")
            return
        try:
            content = await self.decode_json(text_data)
        except ValueError as exc:  # json.JSONDecodeError
            await self.send_error(f"not JSON: {exc}")
            return
        await self.receive_json(content, **kwargs)

    async def send_error(self, message: str) -> None:
        await self.send_json({"type": "error", "message": message})


class LeaderboardConsumer(JsonFramesConsumer):
    """Pushes 'board.updated' to every open leaderboard page of a scope.

    The client sends {"subscribe": "<scope>"}; it may follow several scopes.
    """

    async def connect(self):
        self.groups_joined = set()
        await self.accept()

    async def receive_json(self, content, **kwargs):
        scope = content.get("subscribe") if isinstance(content, dict) else None
        if not isinstance(scope, str) or not 0 < len(scope) <= 300 or _SURROGATE.search(scope):
            await self.send_error('send {"subscribe": "<scope>"}')
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
