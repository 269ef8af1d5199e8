"""The Redis channel layer keeps idle websockets open (regression: redis-py 8 + channels-redis 4.3
raised "Timeout reading" after 5 s of silence, closing every idle leaderboard page)."""

import asyncio
import os

import pytest


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the full stack)")
def test_an_idle_receive_on_redis_just_waits():
    from channels_redis.core import RedisChannelLayer

    async def idle():
        layer = RedisChannelLayer(hosts=[os.environ["REDIS_URL"]], prefix="arena-test-idle")
        channel = await layer.new_channel()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), timeout=6.5)  # brpop_timeout is 5 s
        await layer.flush()

    asyncio.run(idle())
