"""Errors the task services raise; views, APIs and jobs translate them for people and clients."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tasks.models import Ban


class TaskStateError(Exception):
    """An illegal status change (e.g. completed -> recruiting)."""


class ChainConfirmationError(Exception):
    """A submitted transaction does not prove what the page claims; the message says why, in plain words."""


class CredentialError(ValueError):
    """A uniqueness credential was refused; the message says why."""


class JoinRefused(Exception):
    """A join was refused. `code` is stable for clients; `message` explains in plain words."""

    CODES = (
        "not_recruiting",
        "full",
        "spec_mismatch",
        "banned",
        "already_joined",
        "bad_signature",
        "credential_required",
        "wrong_wallet",
        "not_on_chain",
        "contract_wallet",
    )

    def __init__(self, code: str, message: str, *, ban: Ban | None = None):
        assert code in self.CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.ban = ban
