"""What training does when the task domain changes (`tasks.signals`; connected in `TrainingConfig.ready()`).

The signals arrive inside the task service's transaction: the node registration row is written with the
participation, and the SuperLink jobs are enqueued after the commit (`training.services._enqueue`).
"""

from __future__ import annotations

from tasks import signals


def on_participation_joined(sender, *, participation, **kwargs) -> None:
    """Record the participant's node key and register it with the SuperLink after commit (then maybe start)."""
    from training.services import node_registration_request

    node_registration_request(participation=participation)


def on_identity_banned(sender, *, identity, **kwargs) -> None:
    """Exclude the person's nodes from the live runs at once (their next round), then, after the ban commits,
    unregister every SuperNode of the person (all merged identities)."""
    from training.services import node_unregister_request
    from training.services.runs import banned_nodes_refresh

    banned_nodes_refresh(identity=identity)
    node_unregister_request(identity=identity)


def on_task_failed(sender, *, task, **kwargs) -> None:
    """Settle the failed task's escrow on chain after the failure commits (job `task_settle_failed`)."""
    from training.services import common

    if task.chain_task_id is not None:
        common.enqueue("task_settle_failed", task.pk)


def connect() -> None:
    """Subscribe to the task signals (idempotent: `dispatch_uid`s)."""
    signals.participation_joined.connect(on_participation_joined, dispatch_uid="training.node_registration")
    signals.identity_banned.connect(on_identity_banned, dispatch_uid="training.node_unregister")
    signals.task_failed.connect(on_task_failed, dispatch_uid="training.settle_failed")
