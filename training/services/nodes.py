"""SuperNode keys: register a participant's node key with the SuperLink, re-register after a restart, unregister
the nodes of a banned person.

A join creates/reuses a `NodeRegistration` (one per key, bound to the wallet that first joined with it) and
a `training` job registers the key (`flwr supernode register`, name = wallet); the node id the SuperLink
gives maps the ServerApp's replies back to the participation.
"""

from __future__ import annotations

import json
import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from bcfl_core import eip712
from tasks.models import Identity, Participation, Task
from training.models import NodeRegistration
from training.services import common
from training.services.common import TrainingError
from training.services.runs import training_maybe_start

logger = logging.getLogger(__name__)
Status = NodeRegistration.Status


def openssh_public_key(text: str) -> str:
    """A participant's node key as OpenSSH text (what `flwr supernode register` takes); PEM is converted.

    Never treated as a path: the text itself is parsed, and only an ECDSA key is accepted. Raises
    TrainingError (with the reason) for anything else.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    text = (text or "").strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_ssh_public_key(text.encode())
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"The node public key is not a valid OpenSSH or PEM public key ({exc}).") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TrainingError("The node public key must be an ECDSA key (Flower SuperNode authentication).")
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def node_registration_request(*, participation: Participation) -> NodeRegistration:
    """Record the participation's node key (reused across tasks) and register it with the SuperLink (job).

    Call inside the join's transaction; the job runs after commit. A key bound to another wallet is refused
    (recorded as failed for this participation's task page; the join itself stands).
    """
    key_hash = participation.node_public_key_hash or eip712.node_public_key_hash(
        participation.node_public_key
    )
    try:
        with transaction.atomic():
            reg, created = NodeRegistration.objects.get_or_create(
                public_key_hash=key_hash,
                defaults={
                    "public_key": participation.node_public_key.strip(),
                    "wallet": participation.wallet,
                    "identity_id": participation.identity_id,
                },
            )
    except IntegrityError:
        reg, created = NodeRegistration.objects.get(public_key_hash=key_hash), False
    if reg.wallet.lower() != participation.wallet.lower():
        logger.warning("node key %s is bound to %s, not %s", key_hash, reg.wallet, participation.wallet)
        return reg
    if created or reg.status in (Status.PENDING, Status.UNREGISTERED):
        if reg.status == Status.UNREGISTERED:
            NodeRegistration.objects.filter(pk=reg.pk).update(status=Status.PENDING, error="")
        common.enqueue("node_register", reg.pk)
    elif reg.status == Status.REGISTERED:
        common.enqueue("training_maybe_start", participation.task_id)
    return reg


def _registration_failed(reg: NodeRegistration, reason: str) -> NodeRegistration:
    reg.status, reg.error = Status.FAILED, reason
    reg.save(update_fields=["status", "error", "updated_at"])
    return reg


def _register_key(reg: NodeRegistration, link) -> int:
    """The SuperLink's node id for the registration's key (registering it, or finding it registered)."""
    from training.superlink import FlowerError

    key = openssh_public_key(reg.public_key)
    try:
        return int(link.register_node(key, name=reg.wallet))
    except FlowerError as exc:
        node_id = _find_node(link, key, reg.wallet)
        if node_id is None:
            raise TrainingError(f"The SuperLink refused the node key: {exc}") from exc
        return node_id


def node_register(*, registration_id: int, link=None) -> NodeRegistration:
    """Register the key with the SuperLink (name = wallet) and store the node id. Idempotent.

    A key the SuperLink already knows (a job redelivered after the CLI call) is found by listing nodes.
    Then every recruiting task the wallet joined with this key is checked for the start condition.
    """
    from tasks.selectors import identity_active_ban

    reg = NodeRegistration.objects.get(pk=registration_id)
    if reg.status == Status.REGISTERED and reg.node_id is not None:
        return reg
    if identity_active_ban(identity=reg.identity) is not None:
        return _registration_failed(reg, "The participant's identity is banned.")
    try:
        node_id = _register_key(reg, link or common.superlink())
    except TrainingError as exc:
        return _registration_failed(reg, str(exc))
    reg.node_id, reg.status, reg.error = str(node_id), Status.REGISTERED, ""
    reg.registered_at = timezone.now()
    reg.save(update_fields=["node_id", "status", "error", "registered_at", "updated_at"])
    task_ids = Participation.objects.filter(
        node_public_key_hash=reg.public_key_hash, task__status=Task.Status.RECRUITING
    ).values_list("task_id", flat=True)
    for task_id in task_ids:
        training_maybe_start(task=Task.objects.get(pk=task_id))
    return reg


def nodes_reregister_all(*, link) -> int:
    """After a SuperLink (re)start with fresh state: register every registered, unbanned node key again.

    Flower assigns new node ids; the rows are updated, so the next run's participant map is right. Returns
    how many keys were registered.
    """
    from tasks.selectors import identity_active_ban

    count = 0
    for reg in NodeRegistration.objects.filter(status=Status.REGISTERED).order_by("pk"):
        if identity_active_ban(identity=reg.identity) is not None:
            continue
        reg.status, reg.node_id = Status.PENDING, None
        reg.save(update_fields=["status", "node_id", "updated_at"])
        if node_register(registration_id=reg.pk, link=link).status == Status.REGISTERED:
            count += 1
    return count


def _find_node(link, openssh_key: str, wallet: str) -> int | None:
    """The node id the SuperLink holds for this key (or, failing a key column, this wallet's name)."""
    body = openssh_key.split()[1] if len(openssh_key.split()) > 1 else openssh_key
    for node in link.list_nodes():
        if node.get("status") == "unregistered":
            continue
        text = json.dumps(node)
        if body in text or (wallet and str(node.get("owner-name") or node.get("name") or "") == wallet):
            return int(node["node-id"])
    return None


def node_unregister_identity(*, identity_id: int, link=None) -> int:
    """Unregister every registered node of the person (all merged identities). Idempotent; returns the count."""
    from tasks.selectors import identity_group_ids
    from training.superlink import FlowerError

    identity = Identity.objects.get(pk=identity_id)
    link = link or common.superlink()
    count = 0
    for reg in NodeRegistration.objects.filter(
        identity_id__in=identity_group_ids(identity=identity), status=Status.REGISTERED
    ):
        try:
            link.unregister_node(int(reg.node_id))
        except FlowerError as exc:  # already gone on the SuperLink: that is the goal
            logger.info("unregister node %s: %s", reg.node_id, exc)
        reg.status, reg.unregistered_at = Status.UNREGISTERED, timezone.now()
        reg.save(update_fields=["status", "unregistered_at", "updated_at"])
        count += 1
    return count


def node_unregister_request(*, identity: Identity) -> None:
    """After a ban commits, unregister the person's nodes (job)."""
    common.enqueue("node_unregister_identity", identity.pk)
