"""Write side of training: node registration, Flower runs, round ingestion and commitRound.

Flow: a join creates/reuses a `NodeRegistration` and a `training` job registers the key with the
SuperLink; once a recruiting task has `min_participants` registered nodes (or its creator presses
Start) `training_run_start` moves it to training and a job launches the Flower run; the follower job
ingests each round the ServerApp records (one JSON line per round), stores `Round` + `Update` rows,
computes the Merkle root (`contracts.merkle`) and enqueues `commitRound` through the ledger in the
same DB transaction, so a round is either ingested and committed-enqueued or neither. A dead ServerApp
(run failed, or its heartbeat file stale) is replaced by a new run resuming after the last ingested
round from that round's checkpoint; the ledger key `commit-round:<task>:<round>` makes a second
commit of the same round impossible.

Worker crashes: the job chain that launches and follows a run holds a lease on it (`follower_claim`,
renewed on every look). A worker killed with -9 takes its unacknowledged job with it (Redis gives it back
only after the broker's visibility timeout, an hour); once the lease runs out, `training_watchdog` (beat)
starts a new chain, and a late redelivery of the old one finds the lease taken and stops.

Locks: the task row before runs; a run row before its rounds (`select_for_update`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from bcfl_core import eip712, merkle
from tasks.models import Identity, Participation, Task
from training import defence
from training.models import NodeRegistration, Round, Run, Update

logger = logging.getLogger(__name__)

SCORE_SCALE = 10**6  # leaf score = round(score * 1e6) as uint256
ZERO_HASH = "0x" + "00" * 32


class TrainingError(Exception):
    """A training action was refused; the message says why, in plain words."""


# --- plumbing -----------------------------------------------------------------------------------


def superlink():
    """A handle on the platform SuperLink for flwr CLI calls (no process is started)."""
    from training.superlink import SuperLink

    return SuperLink(
        var_dir=Path(settings.VAR_DIR),
        address=settings.SUPERLINK_ADDRESS,
        flwr_home=Path(settings.FLWR_HOME),
        cert_hosts=tuple(settings.SUPERLINK_CERT_HOSTS),
    )


def _setting(name: str, default):
    return getattr(settings, name, default)


def _enqueue(job_name: str, *args, countdown: float | None = None) -> None:
    """Send `training.jobs.<job_name>` after the current transaction commits."""

    def send() -> None:
        from training import jobs

        job = getattr(jobs, job_name)
        if countdown:
            job.apply_async(args=args, countdown=countdown)
        else:
            job.delay(*args)

    transaction.on_commit(send)


def openssh_public_key(text: str) -> str:
    """A participant's node key as OpenSSH text (what `flwr supernode register` takes); PEM is converted.

    Never treated as a path: the text itself is parsed, and only an ECDSA key is accepted.
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


# --- node registration --------------------------------------------------------------------------


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
    if created or reg.status in (NodeRegistration.Status.PENDING, NodeRegistration.Status.UNREGISTERED):
        if reg.status == NodeRegistration.Status.UNREGISTERED:
            NodeRegistration.objects.filter(pk=reg.pk).update(
                status=NodeRegistration.Status.PENDING, error=""
            )
        _enqueue("node_register", reg.pk)
    elif reg.status == NodeRegistration.Status.REGISTERED:
        _enqueue("training_maybe_start", participation.task_id)
    return reg


def node_register(*, registration_id: int, link=None) -> NodeRegistration:
    """Register the key with the SuperLink (name = wallet) and store the node id. Idempotent.

    A key the SuperLink already knows (a job redelivered after the CLI call) is found by listing nodes.
    Then every recruiting task the wallet joined with this key is checked for the start condition.
    """
    reg = NodeRegistration.objects.get(pk=registration_id)
    if reg.status == NodeRegistration.Status.REGISTERED and reg.node_id is not None:
        return reg
    from tasks.selectors import identity_active_ban

    if identity_active_ban(identity=reg.identity) is not None:
        reg.status, reg.error = NodeRegistration.Status.FAILED, "The participant's identity is banned."
        reg.save(update_fields=["status", "error", "updated_at"])
        return reg
    link = link or superlink()
    from training.superlink import FlowerError

    try:
        key = openssh_public_key(reg.public_key)
        try:
            node_id = link.register_node(key, name=reg.wallet)
        except FlowerError as exc:
            node_id = _find_node(link, key, reg.wallet)
            if node_id is None:
                raise TrainingError(f"The SuperLink refused the node key: {exc}") from exc
    except TrainingError as exc:
        reg.status, reg.error = NodeRegistration.Status.FAILED, str(exc)
        reg.save(update_fields=["status", "error", "updated_at"])
        return reg
    reg.node_id, reg.status, reg.error = str(int(node_id)), NodeRegistration.Status.REGISTERED, ""
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
    for reg in NodeRegistration.objects.filter(status=NodeRegistration.Status.REGISTERED).order_by("pk"):
        if identity_active_ban(identity=reg.identity) is not None:
            continue
        reg.status, reg.node_id = NodeRegistration.Status.PENDING, None
        reg.save(update_fields=["status", "node_id", "updated_at"])
        if node_register(registration_id=reg.pk, link=link).status == NodeRegistration.Status.REGISTERED:
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

    identity = Identity.objects.get(pk=identity_id)
    link = link or superlink()
    count = 0
    for reg in NodeRegistration.objects.filter(
        identity_id__in=identity_group_ids(identity=identity), status=NodeRegistration.Status.REGISTERED
    ):
        from training.superlink import FlowerError

        try:
            link.unregister_node(int(reg.node_id))
        except FlowerError as exc:  # already gone on the SuperLink: that is the goal
            logger.info("unregister node %s: %s", reg.node_id, exc)
        reg.status, reg.unregistered_at = NodeRegistration.Status.UNREGISTERED, timezone.now()
        reg.save(update_fields=["status", "unregistered_at", "updated_at"])
        count += 1
    return count


def node_unregister_request(*, identity: Identity) -> None:
    """After a ban commits, unregister the person's nodes (job)."""
    _enqueue("node_unregister_identity", identity.pk)


def task_node_map(*, task: Task) -> dict[int, Participation]:
    """node id -> participation, for the task's participations whose key is registered to their wallet."""
    parts = {
        p.node_public_key_hash: p
        for p in task.participations.filter(
            status__in=(
                Participation.Status.JOINED,
                Participation.Status.ACTIVE,
                Participation.Status.COMPLETED,
            )
        )
    }
    regs = NodeRegistration.objects.filter(
        public_key_hash__in=list(parts), status=NodeRegistration.Status.REGISTERED, node_id__isnull=False
    )
    return {
        int(r.node_id): parts[r.public_key_hash]
        for r in regs
        if r.wallet.lower() == parts[r.public_key_hash].wallet.lower()
    }


# --- runs ---------------------------------------------------------------------------------------


def training_maybe_start(*, task: Task) -> Run | None:
    """Start training when a recruiting task has `min_participants` participants with registered nodes."""
    task.refresh_from_db(fields=["status"])
    if task.status != Task.Status.RECRUITING or len(task_node_map(task=task)) < task.min_participants:
        return None
    try:
        return training_run_start(task=task)
    except TrainingError as exc:
        logger.info("task %s not started: %s", task.pk, exc)
        return None


def training_run_start(*, task: Task, by=None) -> Run:
    """recruiting -> training and launch the first Flower run (job). `by`: the creator pressing Start.

    Needs the task on chain, `min_participants` participants with registered nodes and an implemented
    aggregation rule. Starting a task that is already training returns its current run.
    """
    from tasks.services import TaskStateError, task_transition

    if by is not None and (not by.is_authenticated or by.pk != task.creator_id):
        raise TrainingError("Only the task's creator can start training.")
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        current = Run.objects.filter(task=locked).order_by("-attempt").first()
        if locked.status == Task.Status.TRAINING and current is not None:
            return current
        if locked.status != Task.Status.RECRUITING:
            raise TrainingError(f"The task is {locked.get_status_display().lower()}, not recruiting.")
        if locked.chain_task_id is None:
            raise TrainingError("The task is not registered on chain.")
        rule = defence.RULES.get(locked.aggregation_rule)
        if rule is None or not rule.available:
            available = ", ".join(r.entry.label for r in defence.RULES.values() if r.available)
            raise TrainingError(
                f"Aggregation rule {locked.get_aggregation_rule_display()} is not available yet "
                f"(available: {available})."
            )
        nodes = task_node_map(task=locked)
        if len(nodes) < locked.min_participants:
            raise TrainingError(
                f"{len(nodes)} participant(s) have a registered node; the task needs {locked.min_participants}."
            )
        try:
            task_transition(task=locked, to=Task.Status.TRAINING, note="")
        except TaskStateError as exc:
            raise TrainingError(str(exc)) from exc
        run = Run.objects.create(task=locked, attempt=1)
        _enqueue("training_run_launch", run.pk)
    task.status = locked.status
    return run


def run_dir_of(run: Run) -> Path:
    return Path(settings.VAR_DIR) / "runs" / str(run.task_id) / str(run.attempt)


def build_run_config(*, run: Run, nodes: dict[int, Participation]) -> dict[str, Any]:
    """The Flower run config of a task run (see training/flower_app/pyproject.toml for every key)."""
    from contracts import chain

    task = run.task
    run_dir = run_dir_of(run)
    participants_path = run_dir / "participants.json"
    participants_path.parent.mkdir(parents=True, exist_ok=True)
    participants_path.write_text(
        json.dumps({str(n): p.wallet for n, p in sorted(nodes.items())}, sort_keys=True)
    )
    config: dict[str, Any] = {
        "num-server-rounds": int(task.rounds),
        "model": task.model_kind,
        "lr": float(task.learning_rate),
        "local-epochs": int(task.local_epochs),
        "batch-size": int(task.batch_size),
        "seed": int(task.pk),
        "feature-shape": "x".join(str(int(d)) for d in task.feature_shape),
        "num-classes": int(max(task.label_set)) + 1,
        "test-data-path": str(Path(task.validation_file.path).resolve()),  # the committed validation set
        "min-nodes": int(task.min_participants),
        "round-timeout": float(_setting("TRAINING_ROUND_TIMEOUT", 600.0)),
        "aggregation-rule": task.aggregation_rule,
        "chain-id": int(settings.CHAIN_ID),
        "registry-address": chain.deployment_address("TaskRegistry"),
        "chain-task-id": int(task.chain_task_id),
        "participants-path": str(participants_path),
        "records-path": str(run_dir / "rounds.jsonl"),
        "output-dir": str(run_dir / "out"),
        "heartbeat-path": str(run_dir / "heartbeat"),
        "error-path": str(run_dir / "error.txt"),
    }
    dataset = (task.validation_summary or {}).get("dataset") or _setting("TRAINING_BUNDLED_DATASET", "")
    if dataset:  # bundled data: SuperNodes started with partition-id/num-partitions read this dataset
        config["dataset"] = str(dataset)
    extra = _setting("TRAINING_RUN_CONFIG_EXTRA", {}) or {}
    config.update(extra)
    if run.resume_from_round:
        last = Round.objects.get(task=task, number=run.resume_from_round)
        config.update(
            {
                "resume-from-round": int(run.resume_from_round),
                "initial-checkpoint": last.checkpoint_path,
                "initial-sha256": last.global_sha256,
            }
        )
    return config


def new_follower_token() -> str:
    return uuid.uuid4().hex


def follower_claim(*, run_id: int, token: str | None, seconds: float | None = None) -> bool:
    """Take or renew the lease of the job chain `token` on a run; False if another chain holds it.

    One atomic UPDATE: it succeeds when this chain already holds the lease or the lease is free or expired.
    `token=None` (in-process callers that are the only follower, e.g. tests and benchmarks) always succeeds.
    """
    if token is None:
        return True
    seconds = float(seconds if seconds is not None else _setting("TRAINING_FOLLOWER_LEASE_SECONDS", 60.0))
    now = timezone.now()
    free = Q(follower=token) | Q(follower_until__isnull=True) | Q(follower_until__lt=now)
    claimed = Run.objects.filter(Q(pk=run_id) & free).update(
        follower=token, follower_until=now + timedelta(seconds=seconds)
    )
    return claimed == 1


def training_run_launch(*, run_id: int, link=None, follow: bool = True, token: str | None = None) -> Run:
    """Start the Flower run of `run` (a `training` job). Idempotent.

    The row is marked `launching` (committed) before `flwr run`; a redelivered job that finds a launching row
    without a Flower run id cannot know whether the previous attempt started one, so it marks the row lost,
    stops Flower runs unknown to the platform, and launches a new attempt (own directory: a stray ServerApp
    can never write into a followed run's records).
    """
    link = link or superlink()
    run = Run.objects.select_related("task").get(pk=run_id)
    if run.is_final or run.flower_run_id is not None:
        return run
    if not follower_claim(
        run_id=run.pk, token=token, seconds=_setting("TRAINING_LAUNCH_LEASE_SECONDS", 180.0)
    ):
        logger.info("run %s: another job is launching it", run.pk)
        return run
    if run.started_at is not None:  # an earlier delivery got as far as `flwr run`
        Run.objects.filter(pk=run.pk).update(
            status=Run.Status.LOST, error="launch interrupted", finished_at=timezone.now()
        )
        _stop_unknown_runs(link)
        with transaction.atomic():
            nxt = _next_attempt(run, resume_from=run.resume_from_round)
        return training_run_launch(run_id=nxt.pk, link=link, follow=follow, token=token)
    nodes = task_node_map(task=run.task)
    config = build_run_config(run=run, nodes=nodes)
    run.run_config, run.run_dir, run.started_at = config, str(run_dir_of(run)), timezone.now()
    run.save(update_fields=["run_config", "run_dir", "started_at", "updated_at"])
    from training.superlink import APP_DIR, FlowerError

    try:
        flower_run_id = link.start_run(APP_DIR, config)
    except FlowerError as exc:
        run.status, run.error, run.finished_at = Run.Status.FAILED, f"flwr run failed: {exc}", timezone.now()
        run.save(update_fields=["status", "error", "finished_at", "updated_at"])
        if _run_failed(run, link=link) == "resumed":
            nxt = Run.objects.get(task_id=run.task_id, attempt=run.attempt + 1)
            return training_run_launch(run_id=nxt.pk, link=link, follow=follow, token=token)
        return run
    run.flower_run_id, run.status = str(int(flower_run_id)), Run.Status.RUNNING
    run.save(update_fields=["flower_run_id", "status", "updated_at"])
    if follow:
        with transaction.atomic():
            if token is None:
                _enqueue("training_run_follow", run.pk)
            else:
                _enqueue("training_run_follow", run.pk, token)
    return run


def _stop_unknown_runs(link) -> None:
    known = {int(r) for r in Run.objects.exclude(flower_run_id=None).values_list("flower_run_id", flat=True)}
    try:
        runs = link.flwr_json("ls", link.connection).get("runs", [])
    except Exception as exc:  # noqa: BLE001 - best effort cleanup
        logger.warning("cannot list Flower runs: %s", exc)
        return
    for r in runs:
        if int(r["run-id"]) not in known and not str(r.get("status", "")).startswith("finished"):
            logger.warning("stopping Flower run %s unknown to the platform", r["run-id"])
            try:
                link.stop_run(int(r["run-id"]))
            except Exception as exc:  # noqa: BLE001
                logger.warning("stop run %s: %s", r["run-id"], exc)


def _next_attempt(run: Run, *, resume_from: int) -> Run:
    """Should be called in a transaction. The next attempt of run's task (idempotent per attempt number)."""
    nxt, _ = Run.objects.get_or_create(
        task_id=run.task_id, attempt=run.attempt + 1, defaults={"resume_from_round": resume_from}
    )
    return nxt


# --- ingestion ----------------------------------------------------------------------------------


def read_records(path: str | Path) -> list[dict]:
    """Complete JSON lines of a records file; a trailing line without newline (writer died) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")[:-1]  # the last element is "" or an incomplete line
    out = []
    for line in lines:
        if line.strip():
            out.append(json.loads(line))
    return out


def score_uint(score: float) -> int:
    return max(0, int(round(float(score) * SCORE_SCALE)))


def update_leaf(update: Update) -> bytes | None:
    """Leaf of an update (participant, update hash, score, accepted); None for an unknown node."""
    if not update.wallet:
        return None
    update_hash = "0x" + update.update_sha256 if update.update_sha256 else ZERO_HASH
    return merkle.leaf_hash(update.wallet, update_hash, int(update.score_uint), bool(update.accepted))


def round_leaves(updates: list[Update]) -> list[tuple[Update, bytes]]:
    """The round's leaves in tree order: by node id (deterministic, recomputable from stored rows)."""
    pairs = [(u, update_leaf(u)) for u in sorted(updates, key=lambda u: int(u.node_id))]
    return [(u, leaf) for u, leaf in pairs if leaf is not None]


def round_root(updates: list[Update]) -> str:
    return "0x" + merkle.merkle_root([leaf for _, leaf in round_leaves(updates)]).hex()


def commit_key(task: Task, number: int) -> str:
    return f"commit-round:{task.pk}:{number}"


def round_ingest(*, run: Run, line: dict) -> Round | None:
    """Store one recorded round (Round + Update rows), its Merkle root, and enqueue its commitRound.

    Idempotent: a round already stored returns None and enqueues nothing new. Rounds are taken strictly in
    order (the contract accepts only lastRound + 1): a line that is not the next round is refused.
    """
    from contracts.services import chain_tx_enqueue

    task = run.task
    number = int(line["round"])
    with transaction.atomic():
        Run.objects.select_for_update().get(pk=run.pk)
        if Round.objects.filter(task=task, number=number).exists():
            return None
        last = (
            Round.objects.filter(task=task).order_by("-number").values_list("number", flat=True).first() or 0
        )
        if number != last + 1:
            raise TrainingError(f"round {number} recorded by run {run.pk}, but the next round is {last + 1}")
        nodes = task_node_map(task=task)
        rnd = Round.objects.create(
            task=task,
            run=run,
            number=number,
            global_sha256=str(line["global_sha256"]),
            checkpoint_path=str(line.get("checkpoint") or ""),
            checkpoint_sha256=str(line.get("checkpoint_sha256") or ""),
            accuracy=line.get("accuracy"),
            loss=line.get("loss"),
            aggregation_rule=str(line.get("aggregation_rule") or ""),
            updates_root=ZERO_HASH,
            record=line,
        )
        updates = []
        seen: set[int] = set()
        for u in line.get("updates", []):
            node_id = int(u["node_id"])
            participation = nodes.get(node_id)
            if node_id in seen:  # one record per node and round; the full line stays in `rnd.record`
                continue
            seen.add(node_id)
            # The wallet comes from the platform's own node map, never from the record alone.
            wallet = participation.wallet if participation is not None else ""
            accepted = bool(u["accepted"]) and participation is not None
            score = float(u.get("score") or 0.0) if accepted else 0.0
            updates.append(
                Update(
                    round=rnd,
                    node_id=str(node_id),
                    participation=participation,
                    wallet=wallet,
                    update_sha256=str(u.get("sha256") or ""),
                    signature=str(u.get("signature") or ""),
                    num_examples=int(u.get("num_examples") or 0),
                    norm=u.get("norm"),
                    accepted=accepted,
                    reason=str(u.get("reason") or ("unknown node" if participation is None else "")),
                    score=score,
                    score_uint=score_uint(score),
                )  # fmt: skip
            )
        leaves = round_leaves(updates)
        for index, (u, leaf) in enumerate(leaves):
            u.leaf_index, u.leaf = index, "0x" + leaf.hex()
        Update.objects.bulk_create(updates)
        rnd.updates_root = round_root(updates)
        rnd.accepted_count = sum(1 for u in updates if u.accepted)
        rnd.rejected_count = len(updates) - rnd.accepted_count
        rnd.commit_tx = chain_tx_enqueue(
            key=commit_key(task, number),
            contract_name="TaskRegistry",
            function="commitRound",
            args=[
                int(task.chain_task_id),
                number,
                "0x" + rnd.global_sha256,
                rnd.updates_root,
                rnd.accepted_count,
            ],
            task_ref=str(task.pk),
        )
        rnd.save(update_fields=["updates_root", "accepted_count", "rejected_count", "commit_tx"])
    return rnd


def run_ingest(*, run: Run) -> list[Round]:
    """Ingest every complete, not yet stored round line of the run's records file."""
    path = (run.run_config or {}).get("records-path")
    if not path:
        return []
    stored = set(Round.objects.filter(task_id=run.task_id).values_list("number", flat=True))
    new = []
    for line in read_records(path):
        number = int(line["round"])
        if number <= run.resume_from_round or number in stored:
            continue
        rnd = round_ingest(run=run, line=line)
        if rnd is not None:
            new.append(rnd)
            stored.add(number)
    return new


# --- following ----------------------------------------------------------------------------------


def last_round_number(task: Task) -> int:
    return Round.objects.filter(task=task).order_by("-number").values_list("number", flat=True).first() or 0


def heartbeat_age(run: Run, now: float | None = None) -> float | None:
    """Seconds since the ServerApp last touched its heartbeat file (or since launch if it never did)."""
    now = time.time() if now is None else now
    path = (run.run_config or {}).get("heartbeat-path")
    if path and Path(path).exists():
        return now - Path(path).stat().st_mtime
    if run.started_at is None:
        return None
    return now - run.started_at.timestamp()


def serverapp_error(run: Run) -> str:
    """The reason the ServerApp gave for failing (its ``error-path`` file), or ""."""
    path = (run.run_config or {}).get("error-path")
    try:
        return Path(path).read_text(errors="replace").strip()[:1000] if path else ""
    except OSError:
        return ""


_STATUS_CHECKED: dict[int, float] = {}
LOST = "finished:lost"  # our status for a run the SuperLink no longer knows


def _status_due(run_pk: int) -> bool:
    """True at most once per TRAINING_STATUS_POLL_SECONDS per run (and on a process's first look)."""
    now = time.monotonic()
    if now - _STATUS_CHECKED.get(run_pk, -1e9) < float(_setting("TRAINING_STATUS_POLL_SECONDS", 30.0)):
        return False
    _STATUS_CHECKED[run_pk] = now
    return True


def training_run_follow_step(*, run_id: int, link=None) -> str:
    """One look at a run: ingest new rounds, then act on its Flower status. Idempotent.

    Returns "running" (look again later), "waiting" (all rounds in, commits pending), "resumed" (a new attempt
    was launched), "finalizing" or "failed" (the follower may stop).
    """
    from contracts.models import ChainTx

    link = link or superlink()
    run = Run.objects.select_related("task").get(pk=run_id)
    task = run.task
    if run.status == Run.Status.LAUNCHING:
        return "running"
    run_ingest(run=run)
    if task.status != Task.Status.TRAINING:
        return "failed" if task.status == Task.Status.FAILED else task.status
    if (
        run.status in (Run.Status.FAILED, Run.Status.LOST)
        and Run.objects.filter(task=task, attempt=run.attempt + 1).exists()
    ):
        return "resumed"
    rounds_done = last_round_number(task)
    if run.status == Run.Status.RUNNING:
        from training.superlink import FlowerError, RunNotFound

        # Asking Flower costs a `flwr ls` process (seconds of CPU, taken from training): ask only when the
        # ServerApp's heartbeat is stale, when every round is in, or every TRAINING_STATUS_POLL_SECONDS.
        age = heartbeat_age(run)
        limit = float(_setting("TRAINING_HEARTBEAT_TIMEOUT", 60.0))
        stale = age is not None and age > limit
        if not (stale or rounds_done >= task.rounds or _status_due(run.pk)):
            return "running"
        try:
            status = link.run_status(int(run.flower_run_id))
        except RunNotFound as exc:  # the SuperLink restarted (in-memory state): the run is gone, resume it
            logger.warning("run %s: %s; resuming after round %s", run.pk, exc, rounds_done)
            status = LOST
        except FlowerError as exc:  # SuperLink not answering (restarting): look again later
            logger.warning("run %s status unavailable: %s", run.pk, exc)
            return "running"
        if status != run.flower_status:
            Run.objects.filter(pk=run.pk).update(flower_status=status)
            run.flower_status = status
        if status.startswith("finished"):
            run_ingest(run=run)  # lines written just before the end
            rounds_done = last_round_number(task)
            ok = status == "finished:completed" and rounds_done >= task.rounds
            run.status = Run.Status.COMPLETED if ok else Run.Status.FAILED
            run.finished_at = timezone.now()
            if status == LOST:
                run.error = (
                    f"The SuperLink lost Flower run {run.flower_run_id} (it restarted) after round "
                    f"{rounds_done} of {task.rounds}"
                )
            elif not ok:
                run.error = f"Flower run ended {status} after round {rounds_done} of {task.rounds}"
                reason = serverapp_error(run)
                if reason:
                    run.error += f": {reason}"
            run.save(update_fields=["status", "finished_at", "error", "updated_at"])
        else:
            if stale:
                logger.warning("run %s: ServerApp heartbeat %.0fs old; stopping and resuming", run.pk, age)
                try:
                    link.stop_run(int(run.flower_run_id))
                except FlowerError as exc:
                    logger.info("stop run %s: %s", run.flower_run_id, exc)
                run_ingest(run=run)
                run.status, run.finished_at = Run.Status.FAILED, timezone.now()
                run.error = f"ServerApp stopped responding (heartbeat {age:.0f}s old) after round {last_round_number(task)}"
                run.save(update_fields=["status", "finished_at", "error", "updated_at"])
            else:
                return "running"
    if run.status == Run.Status.FAILED:
        return _run_failed(run, link=link)
    # completed: wait until every commitRound is confirmed, then hand over to finalization
    commits = list(Round.objects.filter(task=task).select_related("commit_tx"))
    failed = [r for r in commits if r.commit_tx and r.commit_tx.status == ChainTx.Status.FAILED]
    if failed:
        _task_fail(
            task, f"commitRound of round {failed[0].number} failed on chain: {failed[0].commit_tx.error}"
        )
        return "failed"
    if len(commits) < task.rounds or any(r.commit_tx is None or r.commit_tx.status != ChainTx.Status.CONFIRMED
                                         for r in commits):  # fmt: skip
        return "waiting"
    training_finished(task=task)
    return "finalizing"


def _run_failed(run: Run, *, link) -> str:
    """After a failed run: resume from the last ingested round, or fail the task with the reason."""
    task = run.task
    # After a SuperLink restart the SuperNodes are still reconnecting: resume without counting them (the new
    # run waits for enough nodes and fails with that reason if they do not come back).
    online = None if run.flower_status == LOST else _online_participant_nodes(task, link)
    if online is not None and online < task.min_participants:
        _task_fail(
            task,
            f"Training stopped after round {last_round_number(task)} of {task.rounds}: only {online} participant "
            f"node(s) online, the task needs {task.min_participants}. ({run.error})",
        )
        return "failed"
    max_attempts = int(_setting("TRAINING_MAX_ATTEMPTS", 3))
    if run.attempt >= max_attempts:
        _task_fail(task, f"Training failed {run.attempt} times; last: {run.error}")
        return "failed"
    with transaction.atomic():
        _next_attempt(run, resume_from=last_round_number(task))
    return "resumed"  # the caller (follower or launcher, already a training job) launches it


def _online_participant_nodes(task: Task, link) -> int | None:
    try:
        nodes = link.list_nodes()
    except Exception as exc:  # noqa: BLE001 - unknown: do not fail the task on a CLI hiccup
        logger.warning("cannot list nodes: %s", exc)
        return None
    online = {int(n["node-id"]) for n in nodes if n.get("status") == "online"}
    return len(online & set(task_node_map(task=task)))


def _task_fail(task: Task, reason: str) -> None:
    from tasks.services import task_transition

    task.refresh_from_db(fields=["status"])
    if task.status == Task.Status.TRAINING:
        task_transition(task=task, to=Task.Status.FAILED, note=reason[:2000])
    Run.objects.filter(task=task, status__in=(Run.Status.LAUNCHING, Run.Status.RUNNING)).update(
        status=Run.Status.FAILED, error=reason[:2000], finished_at=timezone.now()
    )


# Hook for the finalization issue (final model, model card, NFT, stakes): called once per task, with the
# task in `finalizing`, from the follower. Replace with a callable(task) -> None.
FINALIZE_HOOKS: list[Callable[[Task], None]] = []


def training_finished(*, task: Task) -> None:
    """All rounds ingested and committed on chain: training -> finalizing, then the finalization hooks."""
    from tasks.services import task_transition

    task.refresh_from_db(fields=["status"])
    if task.status != Task.Status.TRAINING:
        return
    task_transition(task=task, to=Task.Status.FINALIZING, note=f"{task.rounds} rounds committed on chain.")
    for hook in FINALIZE_HOOKS:
        hook(task)


def training_follow(*, run_id: int, link=None, max_seconds: float = 60.0, poll: float = 2.0,
                    sleep=time.sleep, token: str | None = None) -> tuple[str, int]:  # fmt: skip
    """Follow a task's runs for up to `max_seconds` (switching to resumed attempts, launching them).

    Returns (state, run id to follow next). Used by the job (which re-enqueues itself while "running") and
    by tests calling it in-process. With a `token`, every look first renews the chain's lease on the run;
    state "duplicate" means another chain holds it (this one should stop).
    """
    link = link or superlink()
    deadline = time.monotonic() + max_seconds
    while True:
        if not follower_claim(run_id=run_id, token=token):
            logger.info("run %s is followed by another job; this follower stops", run_id)
            return "duplicate", run_id
        state = training_run_follow_step(run_id=run_id, link=link)
        if state == "resumed":
            run = Run.objects.get(pk=run_id)
            nxt = Run.objects.get(task_id=run.task_id, attempt=run.attempt + 1)
            if nxt.flower_run_id is None and not nxt.is_final:
                nxt = training_run_launch(run_id=nxt.pk, link=link, follow=False, token=token)
            while nxt.status == Run.Status.LOST:  # launch interrupted and replaced by a later attempt
                nxt = Run.objects.get(task_id=nxt.task_id, attempt=nxt.attempt + 1)
            run_id = nxt.pk
            continue
        if state not in ("running", "waiting") or time.monotonic() >= deadline:
            return state, run_id
        sleep(poll)


# --- watchdog -------------------------------------------------------------------------------------


def training_watchdog(*, now=None) -> dict[str, list[int]]:
    """Restart what a dead worker left (beat job). Returns the ids acted on, by action.

    - a training task whose latest run has no live lease (its chain died): a new launch job when the run never
      reached Flower, else a new follower; runs created less than a lease ago are left to their queued job;
    - a node registration still pending after a lease: its job again (`node_register` is idempotent).
    """
    now = now or timezone.now()
    lease = timedelta(seconds=float(_setting("TRAINING_FOLLOWER_LEASE_SECONDS", 60.0)))
    jobs = {
        "launch": "training_run_launch",
        "follow": "training_run_follow",
        "node_register": "node_register",
    }
    acted: dict[str, list[int]] = {action: [] for action in jobs}
    latest = (
        Run.objects.filter(task__status=Task.Status.TRAINING)
        .order_by("task_id", "-attempt")
        .only("pk", "task_id", "attempt", "status", "flower_run_id", "follower_until", "created_at")
    )
    seen: set[int] = set()
    for run in latest:
        if run.task_id in seen:
            continue
        seen.add(run.task_id)
        if run.follower_until is not None and run.follower_until >= now:
            continue
        if run.follower_until is None and run.created_at > now - lease:
            continue
        if run.status == Run.Status.LAUNCHING and run.flower_run_id is None:
            acted["launch"].append(run.pk)
        else:
            acted["follow"].append(run.pk)
    stale = NodeRegistration.objects.filter(
        status=NodeRegistration.Status.PENDING, updated_at__lt=now - lease
    )
    acted["node_register"] = list(stale.values_list("pk", flat=True))
    with transaction.atomic():
        for action, ids in acted.items():
            for pk in ids:
                _enqueue(jobs[action], pk)
    if any(acted.values()):
        logger.warning("training watchdog restarted %s", {k: v for k, v in acted.items() if v})
    return acted
