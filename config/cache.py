"""Django's Redis cache with one client and one connection pool per process.

Django keeps a cache backend per async context, i.e. per request under ASGI, and each
backend builds its own redis-py connection pool; each cache call then builds a new
``redis.Redis`` object as well. So every request that touched the cache (a vote: its
rate limits and its refit flag) opened a TCP connection to Redis, dropped it at the
end, and paid for a client per call. This backend shares one client per server and
options across the process (redis-py clients and pools are thread-safe).
"""

from __future__ import annotations

import threading
from functools import cached_property

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_clients: dict[tuple, ProcessRedisCacheClient] = {}
_lock = threading.Lock()


class ProcessRedisCacheClient(RedisCacheClient):
    """A RedisCacheClient that keeps one ``redis.Redis`` per connection pool."""

    def __init__(self, servers, **options):
        super().__init__(servers, **options)
        self._redis_of_pool = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._redis_of_pool.get(pool)
        if client is None:
            client = self._redis_of_pool[pool] = self._client(connection_pool=pool)
        return client


class ProcessRedisCache(RedisCache):
    """``CACHES[...]["BACKEND"]``: Django's RedisCache, sharing the process's client."""

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            if key not in _clients:
                _clients[key] = ProcessRedisCacheClient(self._servers, **self._options)
            return _clients[key]
