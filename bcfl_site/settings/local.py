"""Local development and `make demo`: SQLite, anvil, local workers."""

from bcfl_site.env import env_bool
from bcfl_site.settings.base import *  # noqa: F403

DEBUG = env_bool("DJANGO_DEBUG", True)


def _redis_reachable(url: str) -> bool:
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


if not _redis_reachable(CELERY_BROKER_URL):  # noqa: F405
    # Embedded broker for the demo on a machine without Redis: kombu's filesystem transport.
    _broker_dir = VAR_DIR / "broker"  # noqa: F405
    for _sub in ("queue", "processed"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{_broker_dir / 'results'}"
    (_broker_dir / "results").mkdir(parents=True, exist_ok=True)
    EMBEDDED_BROKER = True
else:
    EMBEDDED_BROKER = False
