"""Model, data loading, training and evaluation for the BCFL Flower app.

Shared by the ServerApp and ClientApp. The model zoo and datasets live in
``training.zoo`` / ``training.datasets`` (the bcfl repository must be importable:
SuperLink and SuperNodes run with it on PYTHONPATH, see ``training.superlink``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bcfl_core import dataspec
from training import datasets, zoo

# Defaults mirror [tool.flwr.app.config] in pyproject.toml; the run config wins.
DEFAULTS: dict[str, Any] = {
    "num-server-rounds": 3,
    "dataset": "digits",
    "model": "mlp",
    "hidden": 64,
    "lr": 0.05,
    "momentum": 0.9,
    "local-epochs": 3,
    "batch-size": 32,
    "seed": 42,
    "partitioning": "iid",
    "dirichlet-alpha": 0.5,
    "fraction-train": 1.0,
    "fraction-evaluate": 0.0,
    "min-nodes": 2,
    "round-timeout": 600.0,
    "reply-poll-interval": 0.5,
    "max-update-mb": 50.0,
    "records-path": "",
    "output-dir": "",
    "test-data-path": "",
    "feature-shape": "",
    "num-classes": 0,
    "hook-factory": "",
}


def cfg(run_config: Mapping[str, Any], key: str) -> Any:
    value = run_config.get(key, DEFAULTS[key])
    default = DEFAULTS[key]
    # The run config carries TOML scalars; coerce to the default's type (int ⇄ float).
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    feature_shape: tuple[int, ...]
    num_classes: int
    hidden: int
    seed: int

    def build(self) -> nn.Module:
        return zoo.build_model(
            self.kind, self.feature_shape, self.num_classes, hidden=self.hidden, seed=self.seed
        )


def model_spec(run_config: Mapping[str, Any]) -> ModelSpec:
    """Model shape from the run config: explicit ``feature-shape``/``num-classes`` or the bundled dataset."""
    shape_str = str(cfg(run_config, "feature-shape")).strip()
    num_classes = cfg(run_config, "num-classes")
    if not shape_str or num_classes <= 0:
        ds = datasets.load_dataset(cfg(run_config, "dataset"))
        feature_shape = ds.feature_shape if not shape_str else _parse_shape(shape_str)
        num_classes = num_classes if num_classes > 0 else ds.num_classes
    else:
        feature_shape = _parse_shape(shape_str)
    return ModelSpec(
        kind=cfg(run_config, "model"),
        feature_shape=tuple(feature_shape),
        num_classes=int(num_classes),
        hidden=cfg(run_config, "hidden"),
        seed=cfg(run_config, "seed"),
    )


def _parse_shape(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.replace(",", "x").split("x") if p.strip())


def client_data(
    node_config: Mapping[str, Any], run_config: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """This node's (x_train, y_train, x_eval, y_eval).

    With ``data-path`` in the node config: the participant's own file (all of it for training,
    evaluation on the same data). Otherwise: partition ``partition-id`` of ``num-partitions`` of
    the bundled dataset's training part (train) and of its test part (evaluate).
    """
    data_path = str(node_config.get("data-path", "") or "")
    if data_path:
        x, y = dataspec.load_data_file(data_path)
        return x, y, x, y
    if "partition-id" not in node_config or "num-partitions" not in node_config:
        raise ValueError("node config needs either data-path or partition-id and num-partitions")
    pid, n = int(node_config["partition-id"]), int(node_config["num-partitions"])
    name = str(node_config.get("dataset", "") or cfg(run_config, "dataset"))
    ds = datasets.load_dataset(name)
    scheme = cfg(run_config, "partitioning")
    alpha = cfg(run_config, "dirichlet-alpha")
    seed = cfg(run_config, "seed")
    x_tr, y_tr = datasets.partition(ds.x_train, ds.y_train, pid, n, scheme=scheme, alpha=alpha, seed=seed)
    x_te, y_te = datasets.partition(ds.x_test, ds.y_test, pid, n, scheme="iid", seed=seed)
    return x_tr, y_tr, x_te, y_te


def server_test_data(run_config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set the ServerApp scores the global model on."""
    path = str(cfg(run_config, "test-data-path"))
    if path:
        return dataspec.load_data_file(path)
    ds = datasets.load_dataset(cfg(run_config, "dataset"))
    return ds.x_test, ds.y_test


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - flwr/torch helpers may use the global RNG


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float = 0.9,
    seed: int = 0,
) -> float:
    """Local SGD; returns the mean training loss of the last epoch."""
    torch.set_num_threads(1)  # 2 shared cores: many small processes, one thread each
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    last = float("nan")
    for _ in range(max(1, epochs)):
        order = torch.randperm(len(xt), generator=gen)
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(idx)
            count += len(idx)
        last = total / max(count, 1)
    return last


@torch.no_grad()
def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(loss, accuracy) on (x, y)."""
    model.eval()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    logits = model(xt)
    loss = float(nn.functional.cross_entropy(logits, yt).item())
    acc = float((logits.argmax(dim=1) == yt).float().mean().item())
    return loss, acc
