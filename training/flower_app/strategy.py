"""The ServerApp's strategy: FedAvg that samples only a task's participants, screens every reply, then
aggregates the accepted ones with the task's rule, scores them, checkpoints and reports the round.

Flower's round r is task round r + ``round_offset`` (a resumed run continues where the crashed one stopped).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

if __package__:  # imported from the repository as training.flower_app.strategy
    from .checkpoints import save_safetensors
    from .round_records import NullRoundHook, RoundHook, UpdateRecord, hook_takes_info
    from .screening import NO_REPLY, Screener, from_superlink
    from .signatures import SigningContext
else:  # loaded by Flower from the unpacked app bundle
    from checkpoints import save_safetensors  # type: ignore[no-redef]
    from round_records import NullRoundHook, RoundHook, UpdateRecord, hook_takes_info  # type: ignore[no-redef]
    from screening import NO_REPLY, Screener, from_superlink  # type: ignore[no-redef]
    from signatures import SigningContext  # type: ignore[no-redef]

from training import contribution, defence, zoo

log = logging.getLogger("bcfl.serverapp")


class TooFewRepliesError(RuntimeError):
    """Fewer participants answered a round than the task needs: the round does not count."""


def load_rule(name: str):
    """The aggregation function of a ``training.defence.RULES`` entry; ``ValueError`` when not available."""
    rule = defence.RULES.get(name)
    if rule is None or not rule.available:
        available = ", ".join(n for n, r in defence.RULES.items() if r.available)
        raise ValueError(f"aggregation rule {name!r} is not implemented yet (available: {available})")
    return rule.load()


class ValidatingFedAvg(FedAvg):
    """FedAvg that validates each reply, reports each round to a hook, then averages the rest.

    Raises ``ValueError`` for an aggregation rule that is not available.
    """

    def __init__(
        self,
        *,
        hook: RoundHook | None = None,
        central_eval=None,
        max_update_bytes: int = 50 * 2**20,
        checkpoint_dir: str | Path | None = None,
        signing: SigningContext | None = None,
        round_offset: int = 0,
        aggregation_rule: str = "fedavg",
        scorer=contribution.accepted_count,
        node_wait_timeout: float = 600.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._aggregate = load_rule(aggregation_rule)
        self.rule_exclusions: dict[int, str] = {}  # node id -> why the rule left it out (set per round)
        self.round_scores: dict[int, float] = {}  # node id -> the round's contribution score (set per round)
        self.hook = hook or NullRoundHook()
        self._hook_info = hook_takes_info(self.hook)
        self.central_eval = central_eval  # callable(list[np.ndarray]) -> {"accuracy", "loss"}
        self.max_update_bytes = max_update_bytes
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.signing = signing
        self.round_offset = int(round_offset)  # resumed run: Flower's round r is task round r + offset
        self.aggregation_rule = aggregation_rule
        self.scorer = scorer
        self.node_wait_timeout = node_wait_timeout
        self._global: ArrayRecord | None = None
        self._eval_cache: dict[int, dict[str, float]] = {}
        self.history: list[dict[str, Any]] = []

    # --- sampling: only this task's participants ---------------------------------------------

    def _sample(self, grid: Grid, fraction: float, min_nodes: int) -> list[int]:
        """Sample among online participant nodes; waits (bounded) for ``min_available_nodes`` of them."""
        assert self.signing is not None
        allowed = set(self.signing.participants) - self.signing.banned()  # a ban counts from the next round
        deadline = time.monotonic() + self.node_wait_timeout
        while True:
            online = sorted(n for n in grid.get_node_ids() if n in allowed)
            if len(online) >= max(self.min_available_nodes, min_nodes):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"only {len(online)} of the task's {len(allowed)} participant nodes are online; "
                    f"at least {max(self.min_available_nodes, min_nodes)} are needed"
                )
            log.info(
                "waiting for participant nodes: %d online, %d needed", len(online), self.min_available_nodes
            )
            time.sleep(1)
        size = min(len(online), max(int(len(online) * fraction), min_nodes))
        return sorted(random.sample(online, size))

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        self._global = arrays  # the model the replies must match
        task_round = server_round + self.round_offset
        if self.signing is None:
            return super().configure_train(task_round, arrays, config, grid)
        if self.fraction_train == 0.0:
            return []
        node_ids = self._sample(grid, self.fraction_train, self.min_train_nodes)
        self._train_sampled = list(node_ids)  # who was asked: a missing reply is attributed to its node
        config["server-round"] = task_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, node_ids, MessageType.TRAIN)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid):
        task_round = server_round + self.round_offset
        if self.signing is None or self.fraction_evaluate == 0.0:
            return super().configure_evaluate(task_round, arrays, config, grid)
        node_ids = self._sample(grid, self.fraction_evaluate, self.min_evaluate_nodes)
        config["server-round"] = task_round
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, node_ids, MessageType.EVALUATE)

    # --- screening ---------------------------------------------------------------------------

    def screen(
        self, replies: Iterable[Message], server_round: int | None = None
    ) -> tuple[list[Message], list[UpdateRecord], list[UpdateRecord]]:
        """Split replies into (kept messages, accepted records, rejected records).

        ``server_round``: the task round the replies answer (signatures are over it). The accepted
        updates' arrays are kept in ``self._kept_arrays`` by node id, for the scorer.
        """
        assert self._global is not None, "configure_train must run before aggregate_train"
        replies = list(replies)
        screener = Screener(
            self._global,
            self.max_update_bytes,
            self.signing,
            server_round if server_round is not None else 0,
        )
        self._kept_arrays: dict[int, list[np.ndarray]] = {}
        kept: list[Message] = []
        accepted: list[UpdateRecord] = []
        rejected = screener.silent(replies, getattr(self, "_train_sampled", []))
        for msg in replies:
            if from_superlink(msg):
                continue  # accounted for above
            record, arrays = screener.judge(msg)
            if arrays is None:
                rejected.append(record)
                continue
            accepted.append(record)
            self._kept_arrays[record.node_id] = arrays
            kept.append(msg)
        return kept, accepted, rejected

    # --- one round ---------------------------------------------------------------------------

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        task_round = server_round + self.round_offset
        kept, accepted, rejected = self.screen(list(replies), task_round)
        for r in rejected:
            log.warning("round %s: rejected update from node %s: %s", task_round, r.node_id, r.reason)
        self._check_quorum(task_round, accepted, rejected)
        arrays, train_metrics = (None, None)
        self.rule_exclusions = {}
        self._score(task_round, accepted, rejected)  # before aggregating: a rule may use the scores
        if kept:
            arrays, train_metrics = self._aggregate(self, task_round, kept)
        for u in accepted:
            u.excluded = self.rule_exclusions.get(u.node_id, "")
        new_global = arrays if arrays is not None else self._global
        global_np = new_global.to_numpy_ndarrays()
        metrics = self._round_metrics(task_round, global_np, train_metrics, accepted, rejected)
        self._detect(task_round, accepted)
        info: dict[str, Any] = {"aggregation_rule": self.aggregation_rule}
        if self.checkpoint_dir is not None:
            info.update(self._checkpoint(task_round, new_global, global_np))
        self.history.append({"round": task_round, **metrics})
        if self._hook_info:
            self.hook.on_round(task_round, accepted, rejected, global_np, metrics, info=info)
        else:
            self.hook.on_round(task_round, accepted, rejected, global_np, metrics)
        return arrays, train_metrics

    def _check_quorum(
        self, task_round: int, accepted: list[UpdateRecord], rejected: list[UpdateRecord]
    ) -> None:
        """Platform runs: a round needs ``min_train_nodes`` participants who answered (else TooFewRepliesError)."""
        if self.signing is None:
            return
        silent = [r for r in rejected if r.reason.startswith(NO_REPLY)]
        answered = len(accepted) + len(rejected) - len(silent)
        if answered < self.min_train_nodes:
            raise TooFewRepliesError(
                f"round {task_round}: only {answered} participant(s) answered, the task needs "
                f"{self.min_train_nodes} ("
                + "; ".join(f"{r.wallet or r.node_id}: {r.reason}" for r in silent)
                + ")"
            )

    def _round_metrics(self, task_round, global_np, train_metrics, accepted, rejected) -> dict[str, float]:
        """Aggregated client metrics (``train/…``), central ``accuracy``/``loss``, accepted/rejected counts."""
        metrics: dict[str, float] = {}
        if train_metrics is not None:
            metrics.update(
                {f"train/{k}": float(v) for k, v in train_metrics.items() if isinstance(v, int | float)}
            )
        if self.central_eval is not None:
            central = self.central_eval(global_np)
            self._eval_cache[task_round] = central
            metrics.update(central)
        metrics["accepted"] = len(accepted)
        metrics["rejected"] = len(rejected)
        return metrics

    def _score(self, task_round: int, accepted: list[UpdateRecord], rejected: list[UpdateRecord]) -> None:
        """Set each accepted update's contribution score (scored against the round's starting model)."""
        scores = self.scorer(
            task_round,
            accepted,
            rejected,
            self._global.to_numpy_ndarrays(),
            self._kept_arrays,
            self.central_eval,
        )
        for u in accepted:
            u.score = float(scores.get(u.node_id, 0.0))
        self.round_scores = {u.node_id: u.score for u in accepted}

    def _detect(self, task_round: int, accepted: list[UpdateRecord]) -> None:
        """Attach the detection signals of every accepted update (evidence, not the aggregate's business)."""
        global_np = self._global.to_numpy_ndarrays()
        flags = defence.detect(
            global_np,
            {u.node_id: self._kept_arrays[u.node_id] for u in accepted},
            {u.node_id: u.score for u in accepted},
            baseline_loss=self._starting_loss(task_round, global_np),
        )
        for u in accepted:
            u.flags = flags.get(u.node_id, [])

    def _starting_loss(self, task_round: int, global_np) -> float | None:
        """The central (validation) loss of the model the round started from (None without central_eval)."""
        if self.central_eval is None:
            return None
        before = self._eval_cache.get(task_round - 1) or self.central_eval(global_np)
        return float(before["loss"]) if "loss" in before else None

    def _checkpoint(self, task_round: int, new_global: ArrayRecord, global_np) -> dict[str, str]:
        """Save the round's global model; returns the hook's ``checkpoint``/``checkpoint_sha256`` info."""
        path = self.checkpoint_dir / f"round-{task_round:04d}.safetensors"
        digest = save_safetensors(
            path,
            list(new_global.keys()),
            global_np,
            metadata={"round": str(task_round), "weights_sha256": zoo.weights_hash(global_np)},
        )
        return {"checkpoint": str(path), "checkpoint_sha256": digest}

    def evaluate_fn(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        """Central evaluation for ``Strategy.start``; reuses the score computed in aggregate_train."""
        if self.central_eval is None:
            return None
        task_round = server_round + self.round_offset
        result = self._eval_cache.get(task_round)
        if result is None:
            result = self.central_eval(arrays.to_numpy_ndarrays())
            self._eval_cache[task_round] = result
        log.info("round %s: central accuracy %.4f loss %.4f", task_round, result["accuracy"], result["loss"])
        return MetricRecord(result)
