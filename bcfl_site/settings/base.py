"""Settings shared by every environment; everything that varies comes from environment variables."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from kombu import Queue

from bcfl_site.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("BCFL_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("DJANGO_SECRET_KEY", "insecure-dev-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "rest_framework.authtoken",
    "allauth",
    "allauth.account",
    "bcfl_site",
    "bcfl_site.siwe",
    "contracts",
    "tasks",
    "training",
    "marketplace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "bcfl_site.urls"
WSGI_APPLICATION = "bcfl_site.wsgi.application"

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
                "bcfl_site.context_processors.chain",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'bcfl.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web process and the workers share the demo database.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
# Wallet sign-in (bcfl_site/siwe/provider.py): password login for staff only, no self sign-up.
ACCOUNT_ADAPTER = "bcfl_site.siwe.provider.AccountAdapter"
ACCOUNT_FORMS = {"login": "bcfl_site.siwe.forms.StaffLoginForm"}
ACCOUNT_LOGOUT_ON_GET = False
SIWE_NONCE_TTL_SECONDS = env_int("SIWE_NONCE_TTL_SECONDS", 600)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Private storage: model weights and validation sets are never served directly.
PRIVATE_MEDIA_ROOT = VAR_DIR / "private"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # validation sets, final models: no public URL (apps use tasks.storage.private_storage)
    "private": {"BACKEND": "bcfl_site.storage.PrivateStorage"},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # wallet.js reads the token for fetch() POSTs
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Token first: its `WWW-Authenticate: Token` header makes "not signed in" and "bad token" a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "bcfl_site.api_errors.StrictPageNumberPagination",
    "PAGE_SIZE": 25,
    # Every error is {"error", "code"} (+ "fields" / "reason"): bcfl_site/api_errors.py.
    "EXCEPTION_HANDLER": "bcfl_site.api_errors.api_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BCFL API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI is vendored (drf-spectacular-sidecar): no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Adds the reusable Error component and every operation's error statuses (bcfl_site/api_errors.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "bcfl_site.api_errors.schema_add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "tasks.models.Task.Status",
        "ParticipationStatusEnum": "tasks.models.Participation.Status",
    },
}

# --- Celery ---------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60 * 60 - 30)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in ("default", "chain", "training"))
CELERY_TASK_DEFAULT_ROUTING_KEY = "default"
CELERY_TASK_ROUTES = {
    "contracts.jobs.chain_tx_*": {"queue": "chain"},
    "contracts.jobs.chain_reconcile_pending": {"queue": "chain"},
    "training.jobs.*": {"queue": "training"},
}
CELERY_BEAT_SCHEDULE = {
    "index-chain-events": {
        "task": "contracts.jobs.chain_index_events",
        "schedule": env_int("CHAIN_INDEX_INTERVAL", 3),
    },
    "reconcile-pending-transactions": {
        "task": "contracts.jobs.chain_reconcile_pending",
        "schedule": env_int("CHAIN_RECONCILE_INTERVAL", 15),
    },
    "record-worker-heartbeat": {"task": "bcfl_site.jobs.heartbeat", "schedule": 10},
    "tasks-sync-chain-events": {"task": "tasks.jobs.task_sync_chain_events", "schedule": 10},
    "marketplace-sync-chain-events": {
        "task": "marketplace.jobs.marketplace_sync_chain_events",
        "schedule": 10,
    },
    "training-watchdog": {
        "task": "training.jobs.training_watchdog",
        "schedule": env_int("TRAINING_WATCHDOG_INTERVAL", 30),
    },
    "stakes-claim-pending": {
        "task": "training.jobs.stakes_claim_pending",
        "schedule": env_int("STAKES_CLAIM_INTERVAL", 30),
    },
    "distribute-profits": {
        "task": "training.jobs.distribute_profits",
        "schedule": env_int("PROFITS_DISTRIBUTE_INTERVAL", 300),
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Chain ----------------------------------------------------------------------------------------
CHAIN_RPC_URL = env_str("CHAIN_RPC_URL", "http://127.0.0.1:8545")
CHAIN_ID = env_int("CHAIN_ID", 31337)
# Platform signer: CHAIN_SIGNER_KEY (hex) or CHAIN_KEYSTORE_FILE + CHAIN_KEYSTORE_PASSWORD.
# Without either, anvil's dev key #0 is used, and only on chain id 31337 (see contracts/signer.py).
CHAIN_SIGNER_KEY = env_str("CHAIN_SIGNER_KEY", "")
CHAIN_KEYSTORE_FILE = env_str("CHAIN_KEYSTORE_FILE", "")
CHAIN_KEYSTORE_PASSWORD = env_str("CHAIN_KEYSTORE_PASSWORD", "")
CHAIN_CONFIRMATIONS = env_int("CHAIN_CONFIRMATIONS", 0 if CHAIN_ID == 31337 else 5)
CHAIN_RECEIPT_TIMEOUT = env_int("CHAIN_RECEIPT_TIMEOUT", 120)
CHAIN_INDEX_MAX_BLOCKS = env_int("CHAIN_INDEX_MAX_BLOCKS", 2000)
CHAIN_EXPLORER_URL = env_str(
    "CHAIN_EXPLORER_URL", ""
)  # e.g. https://amoy.polygonscan.com (links in model cards)
# Finalization and profit sharing (training.services.settlement / payouts)
NFT_ROYALTY_BPS = env_int("NFT_ROYALTY_BPS", 500)  # ERC-2981 royalty on NFT sales, paid to the stake pool
STAKES_CLAIM_BATCH = env_int("STAKES_CLAIM_BATCH", 100)  # holders per claimSharesBatch (<= 90k gas each)
PROFITS_PUSH_BATCH = env_int("PROFITS_PUSH_BATCH", 100)  # holders per pushPayouts
PROFITS_PUSH_MIN_WEI = env_int("PROFITS_PUSH_MIN_WEI", 10**15)  # push only claimable amounts from 0.001 ETH

# --- Flower ---------------------------------------------------------------------------------------
SUPERLINK_ADDRESS = env_str("SUPERLINK_ADDRESS", "127.0.0.1:9093")
# Names participants use to reach the SuperLink; its TLS server certificate covers all of them (reissued by
# the same platform CA when this list grows). E.g. "127.0.0.1,localhost,fl.example.org,203.0.113.7".
SUPERLINK_CERT_HOSTS = tuple(env_list("SUPERLINK_CERT_HOSTS", ["127.0.0.1", "localhost"]))
# Peers (IP addresses) that may call the SuperLink's Control and Runtime APIs (start/stop/list runs, ServerApp
# I/O); everyone else reaches only the Fleet API the SuperNodes use (training.superlink_guard). Loopback: the
# workers, their flwr CLI calls and the ServerApp processes run on the SuperLink's machine.
SUPERLINK_CONTROL_HOSTS = tuple(env_list("SUPERLINK_CONTROL_HOSTS", ["127.0.0.1", "::1"]))
FLWR_HOME = Path(env_str("FLWR_HOME", str(VAR_DIR / "flwr")))
TRAINING_ROUND_TIMEOUT = float(env_int("TRAINING_ROUND_TIMEOUT", 600))  # seconds a round waits for replies
TRAINING_HEARTBEAT_TIMEOUT = float(env_int("TRAINING_HEARTBEAT_TIMEOUT", 60))  # silent ServerApp → resume
TRAINING_MAX_ATTEMPTS = env_int("TRAINING_MAX_ATTEMPTS", 3)  # Flower runs per task before it fails
# A finalization step's transient failures (I/O, database busy): retries, and the first wait (doubled each time).
TRAINING_FINALIZE_MAX_RETRIES = env_int("TRAINING_FINALIZE_MAX_RETRIES", 5)
TRAINING_FINALIZE_RETRY_BACKOFF = float(env_int("TRAINING_FINALIZE_RETRY_BACKOFF", 5))
# A participant flagged (invalid update or a counting detection signal) in at least this share of the rounds
# it answered, and in at least 2, is judged malicious at the end of training: no stake, banned.
TRAINING_VERDICT_ROUND_SHARE = env_int("TRAINING_VERDICT_ROUND_PERCENT", 50) / 100
# The follower reads round records and the ServerApp heartbeat from files every 2 s; it asks Flower for the
# run's status (a `flwr ls` process, seconds of CPU) only this often, or when the heartbeat is stale.
TRAINING_STATUS_POLL_SECONDS = float(env_int("TRAINING_STATUS_POLL_SECONDS", 30))
# A run's follower (or launcher) job holds a lease on it, renewed on every look; when a worker dies (kill -9)
# the lease runs out and the watchdog (beat, every TRAINING_WATCHDOG_INTERVAL s) starts a new follower.
TRAINING_FOLLOWER_LEASE_SECONDS = float(env_int("TRAINING_FOLLOWER_LEASE_SECONDS", 60))
TRAINING_LAUNCH_LEASE_SECONDS = float(env_int("TRAINING_LAUNCH_LEASE_SECONDS", 180))  # `flwr run` may be slow

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"web3": {"level": "WARNING"}, "urllib3": {"level": "WARNING"}},
}
EMBEDDED_BROKER = False
