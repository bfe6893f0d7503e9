"""The warm launcher's ClientApp child: what ``flwr-clientapp`` would do, in a process forked from the launcher.

Imports nothing heavy at module level; ``run_clientapp_child`` imports flwr's ``run_clientapp`` (already
preloaded in the launcher) after the fork hygiene of ``training.client.forking.prepare_child``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from training.client.forking import prepare_child
from training.client.launcher_stats import Stats


@dataclass(frozen=True)
class ClientAppSpec:
    """The arguments ``SubprocessExecutor`` would put on the ``flwr-clientapp`` command line."""

    runtime_api_address: str
    token: str
    insecure: bool
    certificates: bytes | None
    parent_pid: int | None
    runtime_dependency_install: bool
    task_id: int
    run_id: int


def trace_phases(module: Any, stats: Stats, task_id: int) -> None:
    """Log when each step of flwr's ``run_clientapp`` starts and ends (``phase`` events in ``stats``).

    Wraps the module-level helpers ``run_clientapp`` calls (only in this forked child):
    ``pull_task_input``, ``install_from_fab``, loading the ClientApp, running it, ``push_message``
    and ``flwr_exit``. The launcher's ``exit`` event then gives the time spent exiting.
    """
    t0 = time.monotonic()

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                stats.write(
                    "phase",
                    task_id=task_id,
                    phase=name,
                    start_s=round(start - t0, 3),
                    dur_s=round(time.monotonic() - start, 3),
                )

        return wrapper

    original_factory = module.get_load_client_app_fn

    def load_fn_factory(*args: Any, **kwargs: Any) -> Any:
        load = original_factory(*args, **kwargs)

        def load_app(*a: Any, **kw: Any) -> Any:
            app = timed("load_clientapp", load)(*a, **kw)
            return timed("clientapp", app)

        return load_app

    for name in ("pull_task_input", "install_from_fab", "push_message"):
        setattr(module, name, timed(name, getattr(module, name)))
    module.get_load_client_app_fn = load_fn_factory
    original_exit = module.flwr_exit

    def flwr_exit(*args: Any, **kwargs: Any) -> Any:
        stats.write("phase", task_id=task_id, phase="flwr_exit", start_s=round(time.monotonic() - t0, 3))
        return original_exit(*args, **kwargs)

    module.flwr_exit = flwr_exit


def run_clientapp_child(spec: ClientAppSpec, stats: Stats | None = None) -> int:
    """Child body: fork hygiene, then flwr's own ``run_clientapp`` (as ``flwr-clientapp`` calls it)."""
    prepare_child()
    sys.argv = ["flwr-clientapp"]  # flwr picks its telemetry exit event from argv[0]
    from flwr.supernode.runtime import run_clientapp as module
    from flwr.supernode.runtime.run_clientapp import run_clientapp

    if stats is not None and stats.path is not None:
        trace_phases(module, stats, spec.task_id)
    run_clientapp(
        runtime_api_address=spec.runtime_api_address,
        token=spec.token,
        insecure=spec.insecure,
        certificates=spec.certificates,
        parent_pid=spec.parent_pid,
        runtime_dependency_install=spec.runtime_dependency_install,
    )
    return 0  # run_clientapp ends in flwr_exit (SystemExit); not normally reached
