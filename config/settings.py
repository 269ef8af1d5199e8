"""Arena settings: one module, driven by the environment, with a working embedded default.

No variable set  -> SQLite (WAL) in ./var/, in-memory channel layer, Celery worker and beat
                    running inside the serving process on kombu's memory:// transport.
DATABASE_URL     -> that database (PostgreSQL through psycopg 3).
REDIS_URL        -> Celery broker + result backend + Channels layer on Redis, with separate
                    worker / beat processes (see docker-compose.yml).
Every variable is listed in README.md.
"""

import ipaddress
import os
import re
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of yes/no/true/false/1/0")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected an integer") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None


DEBUG = env_bool("ARENA_DEBUG", False)
VAR_DIR = Path(env_str("ARENA_VAR_DIR", str(BASE_DIR / "var")))

_secret = env_str("SECRET_KEY")
if not _secret:
    # Embedded mode: a per-installation key kept next to the database, never in the repo.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _key_file = VAR_DIR / "secret_key"
    if not _key_file.exists():
        from django.core.management.utils import get_random_secret_key

        _key_file.write_text(get_random_secret_key())
        _key_file.chmod(0o600)
    _secret = _key_file.read_text().strip()
SECRET_KEY = _secret

ALLOWED_HOSTS = [
    h.strip()
    for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_celery_beat",
    "arena",
    "judges",
    "config",  # the site's process wiring: arena_serve, arena_demo (config/management)
]

# Every request, votes included, passes through all of these; each is needed by the site:
# security headers, sessions and auth (logged-in voters, staff pages, admin), the CSRF
# check of the pages' forms, messages (the run pages and the admin show them), the
# clickjacking header, APPEND_SLASH redirects, and static files (WhiteNoise).
# config/http.py loads them in sync mode and runs them with the view in one pass per
# request, so none of them costs a thread hop. WhiteNoise comes right after the security
# headers (its documented place): static files are answered before sessions or views.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # A connection pool per process (psycopg_pool): ASGI runs views on many threads,
        # and per-thread persistent connections would exhaust the server's slots.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("DB_POOL_MIN", 2),
            "max_size": env_int("DB_POOL_MAX", 10),
            "timeout": env_float("DB_POOL_TIMEOUT", 10.0),
        }
        # Each connection taken from the pool is checked first (one empty query; Django
        # hands CONN_HEALTH_CHECKS to the pool as its check): one that the server dropped
        # (a restart, pg_terminate_backend, a failover) is replaced instead of failing the
        # request or task that took it.
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = env_bool("DB_HEALTH_CHECKS", True)
        if env_str("DATABASE_TEST_NAME"):
            DATABASES["default"].setdefault("TEST", {})["NAME"] = env_str("DATABASE_TEST_NAME")
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(VAR_DIR / "arena.sqlite3")),
            "OPTIONS": {
                # WAL lets the page readers, the in-process worker and the importer share the file.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # The test database is a file like the real one, not Django's default shared-cache
            # in-memory database: there SQLite locks tables between connections and a second
            # connection (a worker thread beside the test, or two worker threads) fails at
            # once with "database table is locked", never waiting on busy_timeout, which WAL
            # and the busy timeout above make a short wait. One file per test process (two
            # runs in one checkout must not share it); Django removes it at the end.
            "TEST": {
                "NAME": str(Path(tempfile.gettempdir()) / f"arena-test-{os.getpid()}.sqlite3")
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "config.staticfiles.PlotlyWheelFinder",  # the audit pages' whole plotly.min.js
]
# Static files are collected into STATIC_ROOT (arena_serve runs collectstatic as it
# starts) under content-hashed names, with gzipped copies: WhiteNoise serves them
# compressed and cacheable for ever, and a changed file gets a new URL. A template that
# names a file never collected fails loudly instead of serving a stale one.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Redis / Celery / Channels ----------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
# "embedded": the worker and beat run in threads of the serving process (memory:// broker).
ARENA_EMBEDDED_WORKER = env_bool("ARENA_EMBEDDED_WORKER", not REDIS_URL)

if REDIS_URL:
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
    if CELERY_BROKER_URL.startswith("redis://"):
        # kombu's Redis transport with a channel that closes cleanly while Redis is down:
        # without it a worker holding an unacked task dies when Redis restarts
        # (config/broker.py says why).
        CELERY_BROKER_TRANSPORT = "config.broker:Transport"
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("CHANNELS_PREFIX", "arena")},
        }
    }
else:
    # (a host named: kombu warns "No hostname was supplied" on every process without one)
    CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "memory://localhost/")
    CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "cache+memory://")
    CHANNEL_LAYERS = {"default": {"BACKEND": "config.layers.ThreadSafeInMemoryChannelLayer"}}

CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis restarting: a task that ends while the result backend is unreachable retries
# storing its result (and counting itself in its chord) until Redis is back, up to about
# five minutes, instead of losing the chord's callback (the run's next step).
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 40
CELERY_RESULT_BACKEND_MAX_SLEEP_BETWEEN_RETRIES_MS = 8000
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Redis broker: a task a worker took but never acked (acks_late, the worker was killed)
# goes back to the queue after this many seconds. Keep it above the longest task and any
# countdown (judge-task retries wait ARENA_JUDGE_TASK_BACKOFF_SECONDS * 2**n), or a task
# still running is handed out a second time.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300)}
if not REDIS_URL:
    # kombu's polling transports (memory://) sleep this long whenever a worker's prefetch
    # is full, i.e. after every task: the default 1 s caps a worker at ~1 task per second.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = env_float("CELERY_POLLING_INTERVAL", 0.01)
CELERY_TIMEZONE = TIME_ZONE

CACHES = {
    "default": (
        # Django's RedisCache with one client per process (config/cache.py says why).
        {"BACKEND": "config.cache.ProcessRedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Arena ------------------------------------------------------------------------------
ARENA_BOOTSTRAP_ROUNDS = env_int("ARENA_BOOTSTRAP_ROUNDS", 1000)
# The board options fitted beside Bradley-Terry: the online Elo's K-factor, and the number
# of Swiss tournaments simulated for the Swiss standings (arena.ratings.swiss).
ARENA_ELO_K = env_float("ARENA_ELO_K", 4.0)
ARENA_SWISS_TOURNAMENTS = env_int("ARENA_SWISS_TOURNAMENTS", 2000)
# A board is refitted at most once per interval (the first vote after a quiet spell: at once).
ARENA_REFIT_MIN_INTERVAL_SECONDS = env_float("ARENA_REFIT_MIN_INTERVAL_SECONDS", 0.5)
ARENA_BATTLE_TTL_SECONDS = env_int("ARENA_BATTLE_TTL_SECONDS", 3600)
# arena_import refuses a record (a JSONL line, a JSON-list item) longer than this.
ARENA_IMPORT_MAX_RECORD_BYTES = env_int("ARENA_IMPORT_MAX_RECORD_BYTES", 1 << 20)
ARENA_MATCHMAKING_POLICY = env_str("ARENA_MATCHMAKING_POLICY", "misorder")
ARENA_NEW_CONTESTANT_VOTES = env_int("ARENA_NEW_CONTESTANT_VOTES", 300)
ARENA_NEW_CONTESTANT_BOOST = env_float("ARENA_NEW_CONTESTANT_BOOST", 3.0)
# Rate limits as HITS/SECONDS, several windows separated by commas (all enforced);
# 0/1 switches one off. IP: per client address; NET: per /24 (IPv4) or /64 (IPv6).
ARENA_VOTE_RATE_SESSION = env_str("ARENA_VOTE_RATE_SESSION", "30/60,1000/86400")
ARENA_VOTE_RATE_IP = env_str("ARENA_VOTE_RATE_IP", "300/60,5000/86400")
ARENA_VOTE_RATE_NET = env_str("ARENA_VOTE_RATE_NET", "600/60,20000/86400")
ARENA_BATTLE_RATE_SESSION = env_str("ARENA_BATTLE_RATE_SESSION", "60/60,2000/86400")
ARENA_BATTLE_RATE_IP = env_str("ARENA_BATTLE_RATE_IP", "600/60,10000/86400")
ARENA_BATTLE_RATE_NET = env_str("ARENA_BATTLE_RATE_NET", "1200/60,40000/86400")
# New voter identities (anonymous sessions minted) per address and per network.
ARENA_NEW_VOTER_RATE_IP = env_str("ARENA_NEW_VOTER_RATE_IP", "20/3600,60/86400")
ARENA_NEW_VOTER_RATE_NET = env_str("ARENA_NEW_VOTER_RATE_NET", "100/3600,300/86400")
# Live-answer streams opened per session and per address.
ARENA_STREAM_RATE_SESSION = env_str("ARENA_STREAM_RATE_SESSION", "20/60")
ARENA_STREAM_RATE_IP = env_str("ARENA_STREAM_RATE_IP", "60/60")
for _name in [n for n in list(globals()) if n.startswith("ARENA_") and "_RATE_" in n]:
    if not re.fullmatch(r"\s*\d+/[1-9]\d*\s*(,\s*\d+/[1-9]\d*\s*)*", globals()[_name]):
        raise ImproperlyConfigured(
            f"{_name}={globals()[_name]!r}: expected HITS/SECONDS windows, e.g. 30/60,1000/86400"
        )
# X-Forwarded-For is read only from these proxies (comma-separated IPs or CIDR networks).
ARENA_TRUSTED_PROXIES = env_str("ARENA_TRUSTED_PROXIES", "")
for _proxy in filter(None, (p.strip() for p in ARENA_TRUSTED_PROXIES.split(","))):
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"ARENA_TRUSTED_PROXIES: {_proxy!r} is not an IP address or CIDR network"
        ) from None
# Who may take battles: none (anyone), login (logged-in users only) or pow (anonymous
# voters solve a proof-of-work challenge of ARENA_POW_BITS leading zero bits once per
# session, within ARENA_POW_TTL_SECONDS of asking for it).
ARENA_VOTER_GATE = env_str("ARENA_VOTER_GATE", "none")
if ARENA_VOTER_GATE not in ("none", "login", "pow"):
    raise ImproperlyConfigured(
        f"ARENA_VOTER_GATE={ARENA_VOTER_GATE!r}: expected none, login or pow"
    )
ARENA_POW_BITS = env_int("ARENA_POW_BITS", 17)
ARENA_POW_TTL_SECONDS = env_int("ARENA_POW_TTL_SECONDS", 600)
# Vote integrity (arena.votes.reveal, arena.trust; README "Vote integrity").
# Which votes reveal the contestants: fresh (only answers written for this battle),
# trusted (also stored answers, to logged-in voters or trust >= ARENA_REVEAL_TRUST),
# always (every vote: an identity oracle for stored answers), never.
ARENA_REVEAL = env_str("ARENA_REVEAL", "fresh")
if ARENA_REVEAL not in ("fresh", "trusted", "always", "never"):
    raise ImproperlyConfigured(
        f"ARENA_REVEAL={ARENA_REVEAL!r}: expected fresh, trusted, always or never"
    )
ARENA_REVEAL_TRUST = env_float("ARENA_REVEAL_TRUST", 0.5)
# Optional per-aspect votes on the battle page (issue 15): each a board of its own
# (scope crit=<aspect>). Names as rubric criteria: lower case, comma-separated; empty: none.
ARENA_BALLOT_ASPECTS = tuple(
    a.strip()
    for a in env_str("ARENA_BALLOT_ASPECTS", "correctness,helpfulness,style").split(",")
    if a.strip()
)
# A vote from an address that minted more than this many session voters in the last hour
# is counted as flagged at once (off the public board).
ARENA_TRUST_BURST_SESSIONS = env_int("ARENA_TRUST_BURST_SESSIONS", 10)
# The trust pass (every ARENA_TRUST_INTERVAL_SECONDS, voters who voted in the last
# ARENA_TRUST_WINDOW_HOURS) flags a voter or address cluster whose votes are this many
# standard deviations unlikely under the board, or one-sided, over >= ARENA_TRUST_MIN_VOTES.
ARENA_TRUST_Z = env_float("ARENA_TRUST_Z", 4.0)
ARENA_TRUST_MIN_VOTES = env_int("ARENA_TRUST_MIN_VOTES", 10)
ARENA_TRUST_INTERVAL_SECONDS = env_float("ARENA_TRUST_INTERVAL_SECONDS", 30.0)
ARENA_TRUST_WINDOW_HOURS = env_float("ARENA_TRUST_WINDOW_HOURS", 24.0)
# Annotation campaigns (judges.campaigns): how often beat expires overdue assignments and
# hands their items out again (an annotator asking for work expires their own at once).
ARENA_CAMPAIGN_EXPIRY_SECONDS = env_float("ARENA_CAMPAIGN_EXPIRY_SECONDS", 60.0)
# Beat looks this often for boards asked for and not fitted for as long, nobody fitting
# them (arena.services.sweep_dirty_boards): refits whose task was lost, e.g. asked for by
# a command-line import beside a server with the embedded worker (an in-memory broker).
ARENA_REFIT_SWEEP_SECONDS = env_float("ARENA_REFIT_SWEEP_SECONDS", 30.0)
CELERY_BEAT_SCHEDULE = {
    "arena-refit-sweep": {
        "task": "arena.tasks.sweep_dirty_boards",
        "schedule": ARENA_REFIT_SWEEP_SECONDS,
    },
    "arena-voter-trust": {
        "task": "arena.tasks.score_voters",
        "schedule": ARENA_TRUST_INTERVAL_SECONDS,
    },
    "arena-campaign-expiry": {
        "task": "judges.tasks.expire_assignments",
        "schedule": ARENA_CAMPAIGN_EXPIRY_SECONDS,
    },
}
# Evaluation runs (judges/runs/). A judge call is retried inside the task by the client
# (the judge's max_retries, backoff from ARENA_JUDGE_RETRY_BASE_DELAY seconds, full jitter);
# when those are exhausted the task itself is retried ARENA_JUDGE_TASK_RETRIES times,
# ARENA_JUDGE_TASK_BACKOFF_SECONDS * 2**n (+ jitter) later, before the call is stored as failed.
ARENA_JUDGE_RETRY_BASE_DELAY = env_float("ARENA_JUDGE_RETRY_BASE_DELAY", 1.0)
ARENA_JUDGE_TASK_RETRIES = env_int("ARENA_JUDGE_TASK_RETRIES", 2)
ARENA_JUDGE_TASK_BACKOFF_SECONDS = env_float("ARENA_JUDGE_TASK_BACKOFF_SECONDS", 30.0)
# Judge calls per batch task: a task sends its calls at once on one event loop; how many
# are in flight is the judge endpoint's limits' business (llm.limits, shared by workers).
ARENA_JUDGE_BATCH_CALLS = env_int("ARENA_JUDGE_BATCH_CALLS", 64)
# Seconds a judge call's claim lives unless its worker renews it (llm.claims): a batch
# delivered twice (a task past CELERY_VISIBILITY_TIMEOUT) waits for the calls the other
# delivery holds; a dead worker's calls are made again this long after it died.
ARENA_JUDGE_CLAIM_SECONDS = env_float("ARENA_JUDGE_CLAIM_SECONDS", 60.0)
# A batch with no new verdict for this long is handed out again (its tasks were lost).
ARENA_RUN_STALL_SECONDS = env_int("ARENA_RUN_STALL_SECONDS", 900)
# How often beat looks for such stalled runs (judges.tasks.watch_runs).
ARENA_RUN_WATCH_SECONDS = env_int("ARENA_RUN_WATCH_SECONDS", 60)
# Provisional run leaderboards are refitted at most this often while a run is going.
ARENA_RUN_REFIT_SECONDS = env_int("ARENA_RUN_REFIT_SECONDS", 10)
# Power planning: the rating difference (points) a run should be able to detect between two
# of its models (80% power, 5% level); runs whose plan cannot are flagged under-powered.
ARENA_RUN_DETECT_RATING = env_float("ARENA_RUN_DETECT_RATING", 50.0)
if not ARENA_RUN_DETECT_RATING > 0:
    raise ImproperlyConfigured(
        f"ARENA_RUN_DETECT_RATING={ARENA_RUN_DETECT_RATING!r}: expected a positive number"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # One line per judge request and per task drowns the rest; LOG_LEVEL=DEBUG shows them.
        **{
            name: {"level": env_str("LOG_LEVEL_CHATTY", "WARNING")}
            for name in ("httpx", "httpx2", "openai", "celery.app.trace", "celery.worker.strategy")
        },
    },
}
