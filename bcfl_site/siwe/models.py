"""Server-issued SIWE nonces: the single-use key of every wallet sign-in."""

from __future__ import annotations

from django.db import models


class SiweNonce(models.Model):
    """One nonce handed to one client; burned by the first sign-in attempt that names it.

    The nonce, never the signature, is the unique key: ECDSA signatures are malleable, so the
    same message can carry several valid signatures.
    """

    class Purpose(models.TextChoices):
        SESSION = "session", "Browser session"
        TOKEN = "token", "API token"

    nonce = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    # Browser nonces are bound to the Django session that asked for them; API nonces have "".
    session_key = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)
    # The address that burned the nonce, when the message could be parsed (audit only).
    used_by_address = models.CharField(max_length=42, blank=True, default="")

    class Meta:
        verbose_name = "SIWE nonce"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expires_at__gt=models.F("created_at")),
                name="siwe_nonce_expires_after_created",
            ),
            models.CheckConstraint(
                condition=~models.Q(purpose="session") | ~models.Q(session_key=""),
                name="siwe_nonce_session_purpose_has_session_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.nonce} ({self.purpose})"
