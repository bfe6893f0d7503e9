"""Process helpers shared by the platform's SuperLink and the participants' SuperNodes.

Importable without Django, torch or flwr (a participant's machine runs the client with neither Django
settings nor the platform): the Flower executables of this venv, the environment Flower processes get,
ports, process groups, and ``--run-config``/``--node-config`` strings.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent.parent
BIN_DIR = Path(sys.executable).parent


class FlowerError(RuntimeError):
    """A flwr command or process failed; the message carries its output."""


def flower_bin(name: str) -> str:
    """A Flower executable from this interpreter's venv (falls back to PATH)."""
    path = BIN_DIR / name
    return str(path) if path.exists() else name


def process_env(flwr_home: str | Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for Flower processes: FLWR_HOME, the repository on PYTHONPATH, the venv on PATH.

    ``extra`` entries override, except PYTHONPATH, which is prepended so the repository stays importable.
    """
    env = dict(os.environ)
    env["FLWR_HOME"] = str(flwr_home)
    parts = [str(REPO_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    # flower-superlink/-supernode spawn flower-superexec and flwr-serverapp/-clientapp by name.
    env["PATH"] = os.pathsep.join([str(BIN_DIR), env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Rich tables and colours must not wrap or pollute JSON output.
    env["COLUMNS"] = "250"
    env["NO_COLOR"] = "1"
    for key, value in (extra or {}).items():
        if key == "PYTHONPATH":
            env[key] = os.pathsep.join(dict.fromkeys([*value.split(os.pathsep), *env[key].split(os.pathsep)]))
        else:
            env[key] = value
    return env


WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")  # noqa: S104 (recognised, not bound)


def local_address(address: str) -> str:
    """The ``host:port`` a process on the same machine connects to for a server listening on ``address``.

    A wildcard bind (``0.0.0.0:9093``, ``[::]:9093``) is reached at ``127.0.0.1:<port>``, a name the
    platform's TLS certificate always covers; any other address is returned unchanged.
    """
    host, _, port = address.rpartition(":")
    return f"127.0.0.1:{port}" if host in WILDCARD_HOSTS else address


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Block until something listens on ``host:port``.

    Raises ``FlowerError`` when ``proc`` exits first or after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise FlowerError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise FlowerError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def spawn(cmd: Sequence[str], *, env: Mapping[str, str], cwd: str | Path, log_path: str | Path | None):
    """Start ``cmd`` in a session (process group) of its own, output appended to ``log_path`` (or discarded)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by Popen
    try:
        return subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=str(cwd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log_path:
            out.close()


def stop_process(proc: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """SIGTERM the process group started with ``start_new_session``; SIGKILL what is left."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    # Children (flower-superexec, flwr-serverapp/clientapp) may outlive the leader.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)


def format_config(config: Mapping[str, Any]) -> str:
    """``{"a": 1, "b": "x y"}`` → ``a=1 b="x y"`` for ``--run-config`` / ``--node-config``."""
    parts = []
    for key, value in config.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        else:
            text = json.dumps(str(value))
        parts.append(f"{key}={text}")
    return " ".join(parts)
