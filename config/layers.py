"""An in-memory channel layer that Celery worker threads can send to.

Channels' ``InMemoryChannelLayer`` assumes every sender runs on the receiver's event
loop. In embedded mode the Celery worker runs in threads of the serving process and
broadcasts through ``async_to_sync`` on a loop of its own; an ``asyncio.Queue`` must not
be woken from a foreign thread, and its reader would only notice the message the next
time its loop woke up for another reason. This layer remembers each receiving
channel's loop and hands messages over with ``call_soon_threadsafe``.
"""

import asyncio
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._loops: dict[str, asyncio.AbstractEventLoop] = {}

    async def receive(self, channel):
        self._loops[channel] = asyncio.get_running_loop()
        try:
            return await super().receive(channel)
        finally:
            if channel not in self.channels:
                self._loops.pop(channel, None)

    async def send(self, channel, message):
        loop = self._loops.get(channel)
        if loop is None or loop is asyncio.get_running_loop() or loop.is_closed():
            return await super().send(channel, message)
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        item = (time.time() + self.expiry, deepcopy(message))
        loop.call_soon_threadsafe(self._put, channel, item)

    def _put(self, channel, item):
        queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
        try:
            queue.put_nowait(item)
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None
