"""`STORAGES["private"]` backend: files under `settings.PRIVATE_MEDIA_ROOT`, with no public URL at all.

Apps never import this module (bcfl_site is the top layer): their file fields use
`tasks.storage.private_storage`, which looks the backend up in `django.core.files.storage.storages`.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class PrivateStorage(FileSystemStorage):
    """Never under MEDIA_URL/STATIC_URL; served only through authorised views.

    The location is read from settings on every use, so `override_settings` and tests can move it.
    """

    @property
    def base_location(self):  # type: ignore[override] # always the current settings
        return str(settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self):  # type: ignore[override]
        return os.path.abspath(self.base_location)

    def url(self, name):
        raise ValueError("private files have no public URL; serve them through an authorised view")
