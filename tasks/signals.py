"""What the task domain tells the apps above it. `tasks` never imports them; they connect receivers here
(``training`` does in ``TrainingConfig.ready()``, see ``training/receivers.py``).

Every signal is sent by a service INSIDE its transaction, right after the rows are written, like Django's
``post_save``: a receiver's own rows are committed (or rolled back) together with the change, so nothing is
lost between the commit and a receiver (``training``'s watchdog resumes a node registration from its pending
row). A receiver defers outside effects (jobs, network calls) with ``transaction.on_commit``. A receiver that
raises rolls the change back. ``sender`` is the model class of the main row.
"""

from __future__ import annotations

from django.dispatch import Signal

participation_joined = Signal()
"""A participant joined a recruiting task. sender=Participation; kwargs: ``participation`` (saved, with its
``node_public_key``, ``node_public_key_hash``, ``wallet``, ``identity`` and ``task``)."""

task_failed = Signal()
"""A task moved to ``failed`` (from any status). sender=Task; kwargs: ``task`` (saved, with its status note).
Its reward may still be escrowed on chain: ``training`` settles it (contributors of committed rounds paid,
the rest refunded)."""

identity_banned = Signal()
"""A person was banned. sender=Ban; kwargs: ``ban`` (saved), ``identity`` (the person's root identity: the
ban holds for every identity merged into it and every wallet linked to them)."""
