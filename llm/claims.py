"""Claims on paid requests: at most one sender of a request at a time, over every process.

A request whose reply costs money (a judge call) can be asked for twice at once: the
broker hands a task that runs longer than its visibility timeout to a second worker while
the first still works on it. Before sending, a caller *claims* the request's key (its
content key): a key claimed by another owner is not sent. The caller waits until the
holder lets go (then reads what the holder stored) or until the claim expires (the holder
died: the caller claims the key and sends the request itself), so a claim never loses a
request.

A claim lives ``ttl`` seconds; its holder renews it while its request is in flight (the
wait for the endpoint's limits included) and releases it once the reply is stored. Only a
dead holder's claims expire. Renewing and releasing touch only the owner's own claims (a
compare-and-set), so a holder that was too slow to renew never frees someone else's.

The claims are kept where the endpoint limits are (:mod:`llm.limits`): in Redis when
``REDIS_URL`` is set (:class:`RedisClaims`, one Lua script per question, one round trip
for a batch of keys), else in the process (:class:`LocalClaims`, an embedded server).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

log = logging.getLogger("llm")

Clock = Callable[[], float]


class Claims:
    """Where the claims live. Every method answers for many keys at once, atomically per key."""

    def take(self, keys: Iterable[str], owner: str, ttl: float) -> set[str]:
        """Claim each key free (or already ``owner``'s) for ``ttl`` seconds; the keys taken."""
        raise NotImplementedError

    def renew(self, keys: Iterable[str], owner: str, ttl: float) -> set[str]:
        """Extend ``owner``'s claims on ``keys`` to ``ttl`` seconds from now; the keys still held."""
        raise NotImplementedError

    def release(self, keys: Iterable[str], owner: str) -> None:
        """Give ``owner``'s claims on ``keys`` back (another owner's are left alone)."""
        raise NotImplementedError


class LocalClaims(Claims):
    """The claims of one process (embedded mode): the same rules under a lock."""

    def __init__(self, clock: Clock = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, float]] = {}  # key -> (owner, expiry)

    def _holder(self, key: str, now: float) -> str | None:
        held = self._held.get(key)
        if held is None or held[1] <= now:
            return None
        return held[0]

    def take(self, keys, owner, ttl):
        with self._lock:
            now, taken = self._clock(), set()
            for key in keys:
                if self._holder(key, now) in (None, owner):
                    self._held[key] = (owner, now + ttl)
                    taken.add(key)
            return taken

    def renew(self, keys, owner, ttl):
        with self._lock:
            now, kept = self._clock(), set()
            for key in keys:
                if self._holder(key, now) == owner:
                    self._held[key] = (owner, now + ttl)
                    kept.add(key)
            return kept

    def release(self, keys, owner):
        with self._lock:
            now = self._clock()
            for key in keys:
                if self._holder(key, now) == owner:
                    del self._held[key]
            for key in [k for k, (_, expiry) in self._held.items() if expiry <= now]:
                del self._held[key]


# KEYS: the claims; ARGV: owner, ttl in ms. Returns the 1-based indexes of the keys taken.
_TAKE = """
local taken = {}
for i, key in ipairs(KEYS) do
  local holder = redis.call('GET', key)
  if not holder or holder == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    taken[#taken + 1] = i
  end
end
return taken
"""

# KEYS: the claims; ARGV: owner, ttl in ms. Returns the 1-based indexes of the keys kept.
_RENEW = """
local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept[#kept + 1] = i
  end
end
return kept
"""

# KEYS: the claims; ARGV: owner.
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


class RedisClaims(Claims):
    """The claims in Redis, shared by every process and machine that uses the server.

    Parameters
    ----------
    url : str
        ``redis://host:port/db``.
    prefix : str
        Key prefix: a claim on ``key`` is the Redis string ``<prefix><key>``, its value
        the owner, its expiry the claim's.
    """

    def __init__(self, url: str, prefix: str = "llm:claims:"):
        import redis  # only Redis deployments need it

        self.url = url
        self.prefix = prefix
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def _keys(self, keys) -> list[str]:
        return [self.prefix + key for key in keys]

    def take(self, keys, owner, ttl):
        keys = list(keys)
        if not keys:
            return set()
        taken = self._take(keys=self._keys(keys), args=[owner, _milliseconds(ttl)])
        return {keys[int(i) - 1] for i in taken}

    def renew(self, keys, owner, ttl):
        keys = list(keys)
        if not keys:
            return set()
        kept = self._renew(keys=self._keys(keys), args=[owner, _milliseconds(ttl)])
        return {keys[int(i) - 1] for i in kept}

    def release(self, keys, owner):
        keys = list(keys)
        if keys:
            self._release(keys=self._keys(keys), args=[owner])


def _milliseconds(seconds: float) -> int:
    return max(1, round(seconds * 1000))


# --- the claims of this process ------------------------------------------------------------
_claims: Claims | None = None
_claims_pid: int | None = None
_claims_lock = threading.Lock()


def claims() -> Claims:
    """Redis when ``REDIS_URL`` is set, else this process's own (chosen once per process)."""
    global _claims, _claims_pid
    with _claims_lock:
        if _claims is None or _claims_pid != os.getpid():
            url = os.environ.get("REDIS_URL")
            _claims, _claims_pid = (RedisClaims(url) if url else LocalClaims()), os.getpid()
        return _claims


def use_claims(new: Claims | None) -> None:
    """Use ``new`` from now on (tests); None chooses again from the environment."""
    global _claims, _claims_pid
    with _claims_lock:
        _claims, _claims_pid = new, (os.getpid() if new is not None else None)


@contextmanager
def holding(keys: Iterable[str], owner: str, ttl: float) -> Iterator[None]:
    """Keep ``owner``'s claims on ``keys`` (taken) while the block runs: a thread renews
    them every ``ttl / 4`` seconds; they are released after. Renewing and releasing are
    best effort (a claim not renewed or not released expires by itself)."""
    keys, stop = set(keys), threading.Event()

    def renew() -> None:
        while not stop.wait(ttl / 4):
            try:
                claims().renew(keys, owner, ttl)
            except Exception as error:  # noqa: BLE001 - the store unreachable: it expires
                log.warning("claims on %d requests not renewed: %s", len(keys), error)

    renewer = threading.Thread(target=renew, name="llm-claims-renewer", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join()
        try:
            claims().release(keys, owner)
        except Exception as error:  # noqa: BLE001 - the store unreachable: they expire
            log.warning("claims on %d requests not released: %s", len(keys), error)
