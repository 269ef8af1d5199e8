"""Per-endpoint limits that hold across every process: requests in flight, requests per
minute and tokens per minute.

A provider limits an account, not a worker, so the limits of one endpoint
(:attr:`llm.config.Endpoint.key`) are kept in one place for all the processes that call
it: in Redis when ``REDIS_URL`` is set (:class:`RedisStore`, every worker process and
machine sees one budget), else in the process (:class:`LocalStore`, an embedded server).
Both stores decide with the same rules, atomically (a Lua script in Redis, a lock in the
process):

- **In flight**: a request holds a *lease* from before it is sent until its reply is read.
  At most ``max_in_flight`` leases are held at once. A lease expires ``ttl`` seconds after
  it was taken (the request's timeout plus a margin), so a worker that dies mid-call gives
  its slots back by itself.
- **Per minute**: a sliding log of the requests sent in the last ``window`` (60 s) seconds,
  each with the tokens it reserved. A request is let through only if, counting it, the log
  holds at most ``requests_per_minute`` requests and ``tokens_per_minute`` tokens, so *no*
  60-second window ever holds more (a token bucket would allow its burst on top). The
  tokens reserved are an upper bound (:func:`llm.openai_compat.estimate_tokens`); a finished
  call gives back what it did not use (:meth:`Store.release`).

A request is let through only when both hold; the in-flight slot and the log entry are
taken together. When the endpoint is full the answer is "wait for a release"; when a
per-minute limit binds, the seconds until the oldest entry that stands in the way leaves
the window.

:class:`Gate` is the waiting side, one per event loop and endpoint: the waiters of the
loop queue (first come, first served) and one pump asks the store for as many of them at
once as it will grant, in one round trip, so a process polls the store at most every few
milliseconds however many calls it has waiting; a release in the same loop wakes the pump
at once.

Time: the stores take a ``clock`` (seconds; a fake one in tests). Without one the Redis
store uses the Redis server's clock, the one clock every machine shares.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]

WINDOW_SECONDS = 60.0
FULL = -1.0  # try_acquire's answer when every in-flight slot is taken
MIN_POLL, MAX_POLL = 0.003, 0.02  # seconds between asks while the endpoint is full
ASK_AT_ONCE = 64  # waiters of a process asked for in one round trip


@dataclass(frozen=True)
class Limits:
    """One endpoint's limits. ``None`` or 0 per-minute limits mean unlimited.

    Attributes
    ----------
    max_in_flight : int
        Requests in flight at once, over every process (>= 1).
    requests_per_minute, tokens_per_minute : int or None
        Over any 60-second window, every process together.
    """

    max_in_flight: int
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self):
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight: must be >= 1, got {self.max_in_flight}")

    @classmethod
    def of(cls, endpoint) -> Limits:
        """The limits of an :class:`llm.config.Endpoint`."""
        return cls(
            endpoint.max_concurrency, endpoint.requests_per_minute, endpoint.tokens_per_minute
        )


def endpoint_id(key: tuple) -> str:
    """A short stable name for an endpoint key (the store's key; no secret is in it)."""
    return hashlib.sha256(json.dumps(list(key)).encode()).hexdigest()[:20]


@dataclass
class Lease:
    """One request's slot: give it back with :meth:`Gate.release` (``used`` tokens, if known)."""

    endpoint: str
    id: str
    tokens: int
    granted_at: float
    used: int | None = field(default=None)


class Store:
    """Where the limits' state lives. Subclasses answer the two questions atomically."""

    async def try_acquire_many(
        self, endpoint: str, requests: list[tuple[str, int]], limits: Limits, ttl: float
    ) -> tuple[int, float | None, float]:
        """Take a slot and log the request, for each ``(lease, tokens)`` in order, while
        both limits allow (one round trip for a process's queue of waiters).

        Returns
        -------
        (granted, wait, now)
            The first ``granted`` requests were let through. ``wait`` is None when all
            were; :data:`FULL` when every slot is taken; else the seconds until a
            per-minute limit lets the next one through. ``now`` is the store's time of the
            decision (0 when it is a wait).
        """
        raise NotImplementedError

    async def try_acquire(
        self, endpoint: str, lease: str, tokens: int, limits: Limits, ttl: float
    ) -> tuple[float | None, float]:
        """One request: ``(None, now)`` when let through, else ``(wait, now)``."""
        granted, wait, now = await self.try_acquire_many(endpoint, [(lease, tokens)], limits, ttl)
        return (None if granted else wait), now

    async def release(
        self, endpoint: str, lease: str, granted_at: float, reserved: int, used: int | None
    ) -> None:
        """Give the slot back; log ``used`` instead of ``reserved`` tokens when it is smaller."""
        raise NotImplementedError

    async def in_flight(self, endpoint: str) -> int:
        """Leases held now (tests, the bench)."""
        raise NotImplementedError


class _Window:
    """One endpoint's state in the process: leases and the sliding log."""

    def __init__(self):
        self.leases: dict[str, float] = {}  # lease -> expiry
        self.log: deque[list] = deque()  # [time, lease, tokens], oldest first
        self.entries: dict[str, list] = {}
        self.tokens = 0


def _per_minute_wait(entries, count: int, total: int, tokens: int, limits: Limits, now: float):
    """Seconds until the log (``entries`` oldest first as (time, tokens)) admits one more
    request of ``tokens``; 0 if it does now."""
    wait = 0.0
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    if rpm and count + 1 > rpm:
        # the (count - rpm)-th oldest entry must leave the window
        index = count - rpm
        for i, (stamp, _) in enumerate(entries):
            if i == index:
                wait = max(wait, stamp + WINDOW_SECONDS - now)
                break
    if tpm:
        need = total + min(tokens, tpm) - tpm
        if need > 0:
            freed = 0
            for stamp, amount in entries:
                freed += amount
                if freed >= need:
                    wait = max(wait, stamp + WINDOW_SECONDS - now)
                    break
    return wait


class LocalStore(Store):
    """The limits of one process (embedded mode): the same rules under a lock."""

    def __init__(self, clock: Clock = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}

    def _window(self, endpoint: str) -> _Window:
        window = self._windows.get(endpoint)
        if window is None:
            window = self._windows[endpoint] = _Window()
        return window

    def _trim(self, window: _Window, now: float) -> None:
        for lease in [k for k, expiry in window.leases.items() if expiry <= now]:
            del window.leases[lease]
        cutoff = now - WINDOW_SECONDS
        while window.log and window.log[0][0] <= cutoff:
            _, lease, amount = window.log.popleft()
            window.tokens -= amount
            window.entries.pop(lease, None)

    async def try_acquire_many(self, endpoint, requests, limits, ttl):
        with self._lock:
            now = self._clock()
            window = self._window(endpoint)
            self._trim(window, now)
            per_minute = limits.requests_per_minute or limits.tokens_per_minute
            for granted, (lease, tokens) in enumerate(requests):
                if len(window.leases) >= limits.max_in_flight:
                    return granted, FULL, now
                if per_minute:
                    wait = _per_minute_wait(
                        ((e[0], e[2]) for e in window.log),
                        len(window.log),
                        window.tokens,
                        tokens,
                        limits,
                        now,
                    )
                    if wait > 0:
                        return granted, wait, 0.0
                    entry = [now, lease, min(tokens, limits.tokens_per_minute or tokens)]
                    window.log.append(entry)
                    window.entries[lease] = entry
                    window.tokens += entry[2]
                window.leases[lease] = now + ttl
            return len(requests), None, now

    async def release(self, endpoint, lease, granted_at, reserved, used):
        with self._lock:
            window = self._window(endpoint)
            window.leases.pop(lease, None)
            entry = window.entries.get(lease)
            if entry is not None and used is not None and used < entry[2]:
                window.tokens -= entry[2] - used
                entry[2] = used

    async def in_flight(self, endpoint):
        with self._lock:
            window = self._window(endpoint)
            self._trim(window, self._clock())
            return len(window.leases)


# KEYS: leases (zset lease -> expiry), log (zset "lease|tokens" -> time), tokens (string)
# ARGV: now ('' = the server's clock), max_in_flight, rpm, tpm, ttl, window, then
# (lease, tokens) pairs, granted in order until one is refused.
# Returns {granted, 'ok' | 'full' | 'wait', now or the seconds to wait}.
_ACQUIRE = """
local now
if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
  local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1e6 end
local max_in_flight, rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, window = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local count, total = 0, 0
if rpm > 0 or tpm > 0 then
  local cutoff = now - window
  while true do
    local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff, 'LIMIT', 0, 500)
    if #old == 0 then break end
    local freed = 0
    for _, member in ipairs(old) do freed = freed + tonumber(string.match(member, '|(%d+)$')) end
    redis.call('DECRBY', KEYS[3], freed)
    redis.call('ZREM', KEYS[2], unpack(old))
  end
  count = redis.call('ZCARD', KEYS[2])
  total = tonumber(redis.call('GET', KEYS[3]) or '0')
end
local granted = 0
for i = 7, #ARGV, 2 do
  local lease, tokens = ARGV[i], tonumber(ARGV[i + 1])
  if held >= max_in_flight then
    if granted > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000) end
    return {granted, 'full', tostring(now)}
  end
  if rpm > 0 or tpm > 0 then
    if tpm > 0 and tokens > tpm then tokens = tpm end
    local wait = 0
    if rpm > 0 and count + 1 > rpm then
      local row = redis.call('ZRANGE', KEYS[2], count - rpm, count - rpm, 'WITHSCORES')
      wait = math.max(wait, tonumber(row[2]) + window - now)
    end
    if tpm > 0 and total + tokens > tpm then
      local need, freed, start = total + tokens - tpm, 0, 0
      while freed < need do
        local rows = redis.call('ZRANGE', KEYS[2], start, start + 199, 'WITHSCORES')
        if #rows == 0 then break end
        for j = 1, #rows, 2 do
          freed = freed + tonumber(string.match(rows[j], '|(%d+)$'))
          if freed >= need then
            wait = math.max(wait, tonumber(rows[j + 1]) + window - now); break
          end
        end
        start = start + 200
      end
    end
    if wait > 0 then
      if granted > 0 then redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000) end
      return {granted, 'wait', tostring(wait)}
    end
    redis.call('ZADD', KEYS[2], now, lease .. '|' .. tokens)
    redis.call('INCRBY', KEYS[3], tokens)
    redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000) + 1000)
    redis.call('PEXPIRE', KEYS[3], math.ceil(window * 1000) + 1000)
    count, total = count + 1, total + tokens
  end
  redis.call('ZADD', KEYS[1], now + ttl, lease)
  held, granted = held + 1, granted + 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000) + 1000)
return {granted, 'ok', tostring(now)}
"""

# ARGV: lease, granted_at, reserved, used ('' = unknown)
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[4] ~= '' and tonumber(ARGV[4]) < tonumber(ARGV[3]) then
  if redis.call('ZREM', KEYS[2], ARGV[1] .. '|' .. ARGV[3]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1] .. '|' .. ARGV[4])
    redis.call('DECRBY', KEYS[3], tonumber(ARGV[3]) - tonumber(ARGV[4]))
  end
end
return 1
"""


class RedisStore(Store):
    """The limits in Redis: one budget for every process and machine that shares the server.

    Parameters
    ----------
    url : str
        ``redis://host:port/db``.
    clock : callable, optional
        Seconds; None (default) uses the Redis server's clock (``TIME``).
    prefix : str
        Key prefix; the keys of an endpoint are ``<prefix>{<endpoint id>}:leases|log|tokens``.
    """

    def __init__(self, url: str, clock: Clock | None = None, prefix: str = "llm:limits:"):
        self.url = url
        self._clock = clock
        self.prefix = prefix
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _client(self):
        import redis.asyncio as aioredis  # only Redis deployments need it

        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._clients.get(loop)
            if state is None:
                client = aioredis.Redis.from_url(self.url, socket_timeout=10)
                state = self._clients[loop] = (
                    client,
                    client.register_script(_ACQUIRE),
                    client.register_script(_RELEASE),
                )
            return state

    def _keys(self, endpoint: str) -> list[str]:
        base = f"{self.prefix}{{{endpoint}}}:"
        return [base + "leases", base + "log", base + "tokens"]

    def _now(self) -> str:
        return "" if self._clock is None else repr(float(self._clock()))

    async def try_acquire_many(self, endpoint, requests, limits, ttl):
        _, acquire, _ = self._client()
        args = [
            self._now(),
            limits.max_in_flight,
            limits.requests_per_minute or 0,
            limits.tokens_per_minute or 0,
            float(ttl),
            WINDOW_SECONDS,
        ]
        for lease, tokens in requests:
            args += [lease, int(tokens)]
        granted, answer, value = await acquire(keys=self._keys(endpoint), args=args)
        answer = answer.decode() if isinstance(answer, bytes) else answer
        if answer == "ok":
            return int(granted), None, float(value)
        if answer == "full":
            return int(granted), FULL, float(value)
        return int(granted), float(value), 0.0

    async def release(self, endpoint, lease, granted_at, reserved, used):
        _, _, release = self._client()
        await release(
            keys=self._keys(endpoint),
            args=[lease, repr(float(granted_at)), int(reserved), "" if used is None else int(used)],
        )

    async def in_flight(self, endpoint):
        client, _, _ = self._client()
        leases = self._keys(endpoint)[0]
        now = self._clock() if self._clock is not None else await _server_time(client)
        await client.zremrangebyscore(leases, "-inf", now)
        return int(await client.zcard(leases))

    async def aclose(self) -> None:
        """Close the running loop's connection pool."""
        with self._lock:
            state = self._clients.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state[0].aclose()


async def _server_time(client) -> float:
    seconds, micros = await client.time()
    return seconds + micros / 1e6


class Gate:
    """The waiting side of one endpoint's limits in one event loop (see the module docstring).

    Waiters queue in the order they came; one pump asks the store for as many of them as
    are waiting (up to :data:`ASK_AT_ONCE`) in one round trip, and waits while the endpoint
    is full (woken by a release in this loop, else polling) or a per-minute limit binds.

    Parameters
    ----------
    store : Store
    endpoint : str
        :func:`endpoint_id` of the endpoint key.
    sleep : coroutine function
        ``asyncio.sleep`` (tests pass a fake that moves a fake clock).
    """

    def __init__(
        self,
        store: Store,
        endpoint: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.store = store
        self.endpoint = endpoint
        self._sleep = sleep
        self._waiting: deque = deque()  # (future, lease id, tokens)
        self._pump: asyncio.Task | None = None
        self._released = asyncio.Event()
        self._rule: tuple[Limits, float] | None = None

    async def acquire(self, limits: Limits, tokens: int, ttl: float) -> Lease:
        """Wait until a request of ``tokens`` tokens may be sent; its lease."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((future, uuid.uuid4().hex, int(tokens)))
        self._rule = (limits, ttl)  # the latest configuration wins
        if self._pump is None or self._pump.done():
            self._pump = asyncio.ensure_future(self._serve())
        return await future

    async def _serve(self) -> None:
        pause = MIN_POLL
        while True:
            while self._waiting and self._waiting[0][0].done():  # cancelled waiters
                self._waiting.popleft()
            if not self._waiting:
                return
            asking = [w for w in list(self._waiting)[:ASK_AT_ONCE] if not w[0].done()]
            limits, ttl = self._rule
            self._released.clear()
            try:
                granted, wait, now = await self.store.try_acquire_many(
                    self.endpoint, [(lease, tokens) for _, lease, tokens in asking], limits, ttl
                )
            except Exception as error:  # the store is down: every waiter hears it
                while self._waiting:
                    future, _, _ = self._waiting.popleft()
                    if not future.done():
                        future.set_exception(error)
                return
            for future, lease, tokens in asking[:granted]:
                self._waiting.remove((future, lease, tokens))
                given = Lease(self.endpoint, lease, tokens, now)
                if future.done():  # cancelled meanwhile: give the slot back
                    await self.release(given)
                else:
                    future.set_result(given)
            if wait is None:
                pause = MIN_POLL
            elif wait == FULL:  # a release here wakes us; other processes' we poll for
                try:
                    await asyncio.wait_for(self._released.wait(), pause)
                except TimeoutError:
                    pause = min(2 * pause, MAX_POLL)
            else:
                await self._sleep(wait)
                pause = MIN_POLL

    async def release(self, lease: Lease) -> None:
        """Give the lease back (its ``used`` tokens refund the rest of the reservation)."""
        try:
            await self.store.release(
                lease.endpoint, lease.id, lease.granted_at, lease.tokens, lease.used
            )
        finally:
            self._released.set()


# --- the store of this process, and one gate per loop and endpoint -----------------------------
_store: Store | None = None
_store_pid: int | None = None
_store_lock = threading.Lock()
_gates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def store() -> Store:
    """Redis when ``REDIS_URL`` is set, else this process's own (chosen once per process)."""
    global _store, _store_pid
    with _store_lock:
        if _store is None or _store_pid != os.getpid():
            url = os.environ.get("REDIS_URL")
            _store, _store_pid = (RedisStore(url) if url else LocalStore()), os.getpid()
        return _store


def use_store(new: Store | None) -> None:
    """Use ``new`` from now on (tests); None chooses again from the environment."""
    global _store, _store_pid
    with _store_lock:
        _store, _store_pid = new, (os.getpid() if new is not None else None)
        _gates.clear()


def gate(key: tuple) -> Gate:
    """The running loop's gate of endpoint ``key`` (:attr:`llm.config.Endpoint.key`)."""
    current = store()
    loop = asyncio.get_running_loop()
    with _store_lock:
        gates = _gates.get(loop)
        if gates is None:
            gates = _gates[loop] = {}
        found = gates.get(key)
        if found is None or found.store is not current:
            found = gates[key] = Gate(current, endpoint_id(key))
        return found
