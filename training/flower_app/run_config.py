"""Run-config helpers of the ServerApp: the platform's keys, their defaults and coercion, the scorer.

The app's own keys (hyper-parameters, data, output) are ``task.DEFAULTS``; the keys below are the ones the
platform adds for task runs. Both are kept in step with ``[tool.flwr.app.config]`` in pyproject.toml.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Mapping
from typing import Any

if __package__:  # imported from the repository as training.flower_app.run_config
    from . import task
else:  # loaded by Flower from the unpacked app bundle
    import task  # type: ignore[no-redef]

from training import contribution

# Run-config keys the platform adds (kept in step with [tool.flwr.app.config] in pyproject.toml).
PLATFORM_DEFAULTS: dict[str, Any] = {
    "chain-id": 0,
    "registry-address": "",
    "chain-task-id": 0,
    "participants": "",  # "node_id:0xWallet,..." or JSON {"node_id": "0xWallet"}
    "participants-path": "",  # JSON file {"node_id": "0xWallet"} (the platform uses this: no arg limits)
    "banned-path": "",  # JSON file [node_id, ...]: banned now; re-read every round (never sampled, replies refused)
    "example-caps-path": "",  # JSON file {"node_id": n}: a reply may claim at most n examples (joined data size)
    "resume-from-round": 0,
    "initial-checkpoint": "",
    "initial-sha256": "",  # weights_hash the checkpoint must have
    "aggregation-rule": "fedavg",
    "scorer": "",  # a training.contribution.SCORERS name ("" = default) or "pkg.module:callable"
    "heartbeat-path": "",  # touched every few seconds while the ServerApp lives
    "error-path": "",  # why the run failed, in plain words, written before the ServerApp raises
}


def rc_get(run_config: Mapping[str, Any], key: str) -> Any:
    """``task.cfg`` for the app's keys, the same coercion for the platform's keys.

    Raises ``KeyError`` for a key that is neither in ``task.DEFAULTS`` nor in ``PLATFORM_DEFAULTS``.
    """
    if key in task.DEFAULTS:
        return task.cfg(run_config, key)
    default = PLATFORM_DEFAULTS[key]
    value = run_config.get(key, default)
    if isinstance(default, int):
        return int(value)
    return str(value)


def load_callable(spec: str) -> Any:
    """The attribute named by ``"pkg.module:attr"`` (imports the module; the standard library's resolver)."""
    return pkgutil.resolve_name(spec)


def scorer_from_config(run_config: Mapping[str, Any]):
    """The round scorer: a name registered in ``training.contribution.SCORERS`` ("" = the default), or a
    ``"pkg.module:callable"`` with the same signature."""
    spec = rc_get(run_config, "scorer")
    if ":" in spec:
        return load_callable(spec)
    return contribution.scorer(spec).load()
