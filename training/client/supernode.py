"""Start a participant's Flower SuperNode, stock or with the warm ClientApp launcher.

Isolation modes:

``"subprocess"``  stock Flower: ``flower-supernode --isolation subprocess`` spawns
                  ``flower-superexec``, which starts one ``flwr-clientapp`` interpreter per
                  message (≈ 5 CPU-s each for importing torch and flwr).
``"warm"``        ``flower-supernode --isolation process`` plus our launcher
                  (``python -m training.client.launcher --runtime-api-address 127.0.0.1:PORT
                  --insecure --parent-pid <supernode pid>``) in place of ``flower-superexec``:
                  torch and flwr are imported once, each ClientApp task is a ``fork()`` calling
                  flwr's own ``run_clientapp``.

Importable without Django (and without torch/flwr). ``start_supernodes`` launches N nodes
for a benchmark; every handle has ``stop()``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.client.procs import (
    REPO_DIR,
    flower_bin,
    format_config,
    free_port,
    process_env,
    spawn,
    stop_process,
    wait_for_port,
)

ISOLATION_MODES = ("warm", "subprocess")
# Third-party modules the ClientApp needs beyond torch/flwr (signing updates: ≈0.7 CPU-s per child when not
# preloaded). Never the app's own code: the launcher refuses that (see launcher.py).
DEFAULT_PRELOAD = ("eth_account", "eth_utils")


@dataclass
class SuperNodeHandle:
    """A running SuperNode (and, in ``warm`` mode, its launcher). Call ``stop()``."""

    isolation: str
    runtime_port: int
    supernode: subprocess.Popen
    launcher: subprocess.Popen | None = None
    launcher_cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    launcher_log_path: Path | None = None
    stats_path: Path | None = None
    start_kwargs: dict[str, Any] = field(default_factory=dict)  # what start_supernode was called with
    restarts: int = 0
    revive_after: float = 0.0  # time.monotonic() before which revive() leaves it alone (backoff)

    @property
    def runtime_api_address(self) -> str:
        return f"127.0.0.1:{self.runtime_port}"

    def alive(self) -> bool:
        if self.supernode.poll() is not None:
            return False
        return self.launcher is None or self.launcher.poll() is None

    def start_launcher(self) -> None:
        if not self.launcher_cmd:
            return
        # its forked ClientApp children share its process group
        self.launcher = spawn(self.launcher_cmd, env=self.env, cwd=REPO_DIR, log_path=self.launcher_log_path)

    def restart_launcher(self, timeout: float = 20.0) -> None:
        """Replace the launcher process (the launcher also restarts itself when a new run begins)."""
        stop_process(self.launcher, timeout)
        self.start_launcher()

    def exit_code(self) -> int | None:
        """The SuperNode's exit code once it has ended (None while it runs)."""
        return self.supernode.poll()

    def restarted(self, timeout: float = 20.0) -> SuperNodeHandle:
        """Stop what is left of this node and start it again with the same arguments (a new handle).

        flwr 1.42's SuperNode exits when its SuperLink restarts (the node id it held is gone); the
        participant's side starts it again and it re-authenticates with its key.
        """
        self.stop(timeout)
        handle = start_supernode(**self.start_kwargs)
        handle.restarts = self.restarts + 1
        return handle

    def stop(self, timeout: float = 20.0) -> None:
        try:
            stop_process(self.launcher, timeout)
        finally:
            self.launcher = None
            stop_process(self.supernode, timeout)

    def __enter__(self) -> SuperNodeHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def supernode_command(
    *,
    superlink: str,
    runtime_port: int,
    isolation: str,
    root_certificates: str | Path | None = None,
    auth_private_key: str | Path | None = None,
    node_config: Mapping[str, Any] | None = None,
    max_retries: int | None = None,
) -> list[str]:
    if isolation not in ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {ISOLATION_MODES}, not {isolation!r}")
    cmd = [flower_bin("flower-supernode")]
    cmd += ["--root-certificates", str(root_certificates)] if root_certificates else ["--insecure"]
    cmd += [
        "--superlink",
        superlink,
        "--host",
        "127.0.0.1",
        "--port",
        str(int(runtime_port)),
        "--isolation",
        "process" if isolation == "warm" else "subprocess",
    ]
    if auth_private_key:
        cmd += ["--auth-supernode-private-key", str(auth_private_key)]
    if node_config:
        cmd += ["--node-config", format_config(node_config)]
    if max_retries is not None:
        cmd += ["--max-retries", str(int(max_retries))]
    return cmd


def launcher_command(
    runtime_port: int,
    parent_pid: int,
    *,
    stats_path: str | Path | None = None,
    preload: Sequence[str] = DEFAULT_PRELOAD,
    python: str | None = None,
    trace_phases: bool = False,
) -> list[str]:
    """The warm launcher's command line: the flags ``flower-supernode`` would give ``flower-superexec``."""
    cmd = [
        python or sys.executable,
        "-m",
        "training.client.launcher",
        "--runtime-api-address",
        f"127.0.0.1:{int(runtime_port)}",
        "--insecure",  # the Runtime API is plain HTTP on loopback, as in stock subprocess mode
        "--parent-pid",
        str(int(parent_pid)),
    ]
    for module in preload:
        cmd += ["--preload", module]
    if stats_path:
        cmd += ["--stats-file", str(stats_path)]
        if trace_phases:
            cmd.append("--trace-phases")
    return cmd


def start_supernode(
    *,
    superlink: str,
    isolation: str = "warm",
    runtime_port: int | None = None,
    root_certificates: str | Path | None = None,
    auth_private_key: str | Path | None = None,
    node_config: Mapping[str, Any] | None = None,
    flwr_home: str | Path | None = None,
    log_path: str | Path | None = None,
    launcher_log_path: str | Path | None = None,
    stats_path: str | Path | None = None,
    preload: Sequence[str] = DEFAULT_PRELOAD,
    extra_env: Mapping[str, str] | None = None,
    max_retries: int | None = None,
    timeout: float = 60.0,
    trace_phases: bool = False,
) -> SuperNodeHandle:
    """Start one participant SuperNode.

    ``root_certificates`` (the platform CA) enables TLS to the SuperLink; without it the node
    connects with ``--insecure``. ``auth_private_key`` is the node's OpenSSH ECDSA key whose
    public half is registered on the SuperLink. In ``warm`` mode the SuperNode's Runtime API
    port is waited for, then the launcher is started with ``--parent-pid`` = the SuperNode.
    """
    home = Path(flwr_home) if flwr_home else Path(tempfile.mkdtemp(prefix="flwr-node-"))
    # For SuperNodeHandle.restarted(); a restart takes a fresh Runtime API port (the old one may linger in
    # TIME_WAIT).
    start_kwargs = {
        "superlink": superlink,
        "isolation": isolation,
        "runtime_port": None,
        "root_certificates": root_certificates,
        "auth_private_key": auth_private_key,
        "node_config": node_config,
        "flwr_home": home,
        "log_path": log_path,
        "launcher_log_path": launcher_log_path,
        "stats_path": stats_path,
        "preload": preload,
        "extra_env": extra_env,
        "max_retries": max_retries,
        "timeout": timeout,
        "trace_phases": trace_phases,
    }
    return _launch(int(runtime_port) if runtime_port else free_port(), start_kwargs)


def _launch(port: int, kw: dict[str, Any]) -> SuperNodeHandle:
    """Start the SuperNode of ``start_supernode(**kw)`` on Runtime API ``port`` (and, warm, its launcher)."""
    home: Path = kw["flwr_home"]
    home.mkdir(parents=True, exist_ok=True)
    env = process_env(home, kw["extra_env"])
    cmd = supernode_command(
        superlink=kw["superlink"],
        runtime_port=port,
        isolation=kw["isolation"],
        root_certificates=kw["root_certificates"],
        auth_private_key=kw["auth_private_key"],
        node_config=kw["node_config"],
        max_retries=kw["max_retries"],
    )
    log_path, launcher_log_path, stats_path = kw["log_path"], kw["launcher_log_path"], kw["stats_path"]
    # stock flower-superexec and its ClientApps share the SuperNode's process group
    proc = spawn(cmd, env=env, cwd=home, log_path=log_path)
    handle = SuperNodeHandle(
        isolation=kw["isolation"],
        runtime_port=port,
        supernode=proc,
        env=env,
        start_kwargs=kw,
        log_path=Path(log_path) if log_path else None,
        launcher_log_path=Path(launcher_log_path or log_path) if (launcher_log_path or log_path) else None,
        stats_path=Path(stats_path) if stats_path else None,
    )
    try:
        if kw["isolation"] == "warm":
            wait_for_port("127.0.0.1", port, kw["timeout"], proc)
            handle.launcher_cmd = launcher_command(
                port, proc.pid, stats_path=stats_path, preload=kw["preload"], trace_phases=kw["trace_phases"]
            )
            handle.start_launcher()
    except BaseException:
        handle.stop()
        raise
    return handle


def start_supernodes(
    n: int,
    *,
    superlink: str,
    isolation: str = "warm",
    node_config: Callable[[int], Mapping[str, Any]] | Sequence[Mapping[str, Any]] | None = None,
    auth_private_keys: Sequence[str | Path] | None = None,
    root_certificates: str | Path | None = None,
    workdir: str | Path | None = None,
    flwr_home: str | Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    preload: Sequence[str] = DEFAULT_PRELOAD,
    trace_phases: bool = False,
) -> list[SuperNodeHandle]:
    """Start ``n`` SuperNodes with the same isolation mode (for benchmarks and tests).

    ``node_config`` defaults to ``partition-id=i num-partitions=n dataset="digits"``. Logs and
    launcher stats go to ``workdir`` (``node{i}.log``, ``node{i}.stats.jsonl``). On error the
    nodes already started are stopped.
    """
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bcfl-nodes-"))
    workdir.mkdir(parents=True, exist_ok=True)
    handles: list[SuperNodeHandle] = []
    try:
        for i in range(n):
            if node_config is None:
                cfg: Mapping[str, Any] = {"partition-id": i, "num-partitions": n, "dataset": "digits"}
            elif callable(node_config):
                cfg = node_config(i)
            else:
                cfg = node_config[i]
            handles.append(
                start_supernode(
                    superlink=superlink,
                    isolation=isolation,
                    root_certificates=root_certificates,
                    auth_private_key=auth_private_keys[i] if auth_private_keys else None,
                    node_config=cfg,
                    flwr_home=flwr_home or workdir / f"node{i}-home",
                    log_path=workdir / f"node{i}.log",
                    stats_path=workdir / f"node{i}.stats.jsonl" if isolation == "warm" else None,
                    extra_env=extra_env,
                    preload=preload,
                    trace_phases=trace_phases,
                )
            )
    except BaseException:
        stop_all(handles)
        raise
    return handles


def revive(
    handles: dict[Any, SuperNodeHandle],
    *,
    max_restarts: int = 5,
    log: Callable[[str], None] | None = None,
    backoff: float = 2.0,
) -> list[Any]:
    """Restart every handle whose SuperNode has ended (in place); returns the keys restarted.

    Restarts back off (``backoff``, then twice as long each time); a restart that fails (the SuperLink is
    still away) counts as one. Raises ``RuntimeError`` once a node has used ``max_restarts``.
    """
    revived = []
    now = time.monotonic()
    for key, handle in list(handles.items()):
        if handle.alive() or now < handle.revive_after:
            continue
        code = handle.exit_code()
        if handle.restarts >= max_restarts:
            raise RuntimeError(
                f"SuperNode {key} stopped (exit code {code}) after {handle.restarts} restart(s); "
                f"see {handle.log_path or 'its log'}"
            )
        if log is not None:
            log(
                f"SuperNode {key} stopped (exit code {code}); starting it again "
                f"({handle.restarts + 1} of at most {max_restarts})"
            )
        try:
            new = handle.restarted()
        except Exception as exc:  # noqa: BLE001 - counted; tried again after the backoff
            if log is not None:
                log(f"SuperNode {key} did not start: {exc}")
            new = handle
            new.restarts += 1
        new.revive_after = time.monotonic() + backoff * 2 ** (new.restarts - 1)
        handles[key] = new
        revived.append(key)
    return revived


def stop_all(handles: Iterable[SuperNodeHandle], timeout: float = 20.0) -> None:
    """Stop every handle; the first error is re-raised after all were tried."""
    first: BaseException | None = None
    for handle in list(handles):
        try:
            handle.stop(timeout)
        except BaseException as err:  # noqa: BLE001
            first = first or err
    if first is not None:
        raise first


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
