"""The private file storage, for every app's file fields (`FileField(storage=private_storage, ...)`).

Configured once in settings as `STORAGES["private"]` (backend `bcfl_site.storage.PrivateStorage`: files
under `PRIVATE_MEDIA_ROOT`, no public URL); apps reach it through this callable, never by importing
`bcfl_site`. A callable keeps migrations free of the storage's settings.
"""

from __future__ import annotations

from django.core.files.storage import Storage, storages


def private_storage() -> Storage:
    """The `STORAGES["private"]` backend (one instance per process)."""
    return storages["private"]
