"""Aggregation functions named by ``training.defence.RULES``.

Each is ``(strategy, server_round, kept_replies) -> (ArrayRecord | None, MetricRecord | None)``.
"""

from __future__ import annotations

from typing import Any

from flwr.app import Message
from flwr.serverapp.strategy import FedAvg


def fedavg(strategy: Any, server_round: int, kept: list[Message]):
    """FedAvg (McMahan et al. 2017): Flower's weighted average by ``num-examples``."""
    return FedAvg.aggregate_train(strategy, server_round, kept)
