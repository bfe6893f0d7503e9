"""Fork-safety helpers of the warm ClientApp launcher (no flwr/torch needed to import them).

A child forked from the launcher must not share its parent's connections, log files, signal handlers,
exit handlers or random state; see ``training.client.launcher`` and ARCHITECTURE.md section 5, "Speed".
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import stat
import sys
import threading
import traceback
from collections.abc import Iterable
from typing import Any

# Never preloaded: the app's own code (training/flower_app, loaded from the FAB as top-level modules) must be
# imported fresh in every child.
FORBIDDEN_PRELOAD_PREFIXES: tuple[str, ...] = (
    "training.flower_app",
    "client_app",
    "server_app",
    "task",
    "strategy",
    "screening",
    "signatures",
    "round_records",
    "checkpoints",
    "polling_grid",
    "run_config",
    "rules",
)
# Signals whose launcher handlers a child must not keep.
_CHILD_RESET_SIGNALS = tuple(
    s for s in ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGCHLD", "SIGUSR1") if hasattr(signal, s)
)


def check_preload(modules: Iterable[str]) -> list[str]:
    """The preload list, refusing the app's own modules (they must load fresh in each child)."""
    out = []
    for name in modules:
        name = name.strip()
        if not name:
            continue
        if any(name == p or name.startswith(p + ".") for p in FORBIDDEN_PRELOAD_PREFIXES):
            raise ValueError(f"refusing to preload app code {name!r}: children must import it fresh")
        out.append(name)
    return out


def preload(modules: Iterable[str]) -> list[str]:
    """Import ``modules`` (imports only: no torch compute, no threads). Returns those imported."""
    import importlib

    done = []
    for name in check_preload(modules):
        importlib.import_module(name)
        done.append(name)
    return done


def inherited_socket_fds(keep: Iterable[int] = (0, 1, 2)) -> list[int]:
    """Open file descriptors of this process that are sockets, except ``keep``."""
    keep = set(keep)
    fds = []
    try:
        names = os.listdir("/proc/self/fd")
    except FileNotFoundError:  # pragma: no cover - non-Linux
        names = [str(fd) for fd in range(3, 1024)]
    for name in names:
        fd = int(name)
        if fd in keep:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue  # the fd listdir itself used, or already closed
        if stat.S_ISSOCK(mode):
            fds.append(fd)
    return sorted(fds)


def neutralize_fds(fds: Iterable[int]) -> list[int]:
    """Point each fd at /dev/null (``dup2``) instead of closing it.

    The child's copy of an inherited connection goes away without a ``shutdown()`` or TLS
    close-notify, so the parent's connection is untouched; the fd number stays taken, so a
    stale Python object that closes "its" fd later cannot hit a new socket of the child.
    """
    done = []
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        for fd in fds:
            if fd == null:
                continue
            try:
                os.dup2(null, fd, inheritable=False)
            except OSError:
                continue
            done.append(fd)
    finally:
        os.close(null)
    return done


def _stream_fd(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def detach_log_files(keep_fds: Iterable[int] = (0, 1, 2)) -> list[str]:
    """Remove logging handlers writing to files (not stdout/stderr) from every logger.

    The file descriptor is pointed at /dev/null before the handler is closed, so a child
    neither writes into the launcher's log file nor flushes the parent's buffered lines twice.
    Returns the names of the files detached.
    """
    keep_fds = set(keep_fds)
    detached = []
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in list(lg.handlers):
            if not isinstance(handler, logging.StreamHandler):
                continue
            stream = getattr(handler, "stream", None)
            fd = _stream_fd(stream)
            if fd is None or fd in keep_fds:
                continue
            neutralize_fds([fd])
            lg.removeHandler(handler)
            with contextlib.suppress(Exception):
                if stream is not None and hasattr(stream, "close"):
                    stream.close()
            detached.append(getattr(handler, "baseFilename", str(fd)))
    return detached


def reseed(entropy: bytes | None = None) -> dict[str, int]:
    """Give ``random``, numpy's global RNG and torch's default generator fresh seeds.

    A forked child otherwise shares its parent's RNG state with every sibling. Seeds come
    from ``os.urandom`` (what a fresh interpreter does), or from ``entropy`` for tests.
    Torch is only touched when already imported (it is, in the launcher).
    """
    material = entropy if entropy is not None else os.urandom(24)
    if len(material) < 24:
        material = (material * (24 // max(len(material), 1) + 1))[:24]
    py_seed = int.from_bytes(material[0:8], "little")
    np_seed = int.from_bytes(material[8:12], "little")
    torch_seed = int.from_bytes(material[12:20], "little") & ((1 << 63) - 1)
    random.seed(py_seed)
    seeds = {"random": py_seed}
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(np_seed)
        seeds["numpy"] = np_seed
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(torch_seed)
        seeds["torch"] = torch_seed
    return seeds


def reset_signal_handlers() -> None:
    for name in _CHILD_RESET_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def reset_flwr_state() -> None:
    """Forget the launcher's flwr exit handlers and re-create module locks a fork may have copied held."""
    exit_handler = sys.modules.get("flwr.supercore.exit.exit_handler")
    if exit_handler is not None:
        exit_handler.registered_exit_handlers.clear()
        exit_handler._lock_handlers = threading.Lock()
    telemetry = sys.modules.get("flwr.supercore.telemetry")
    if telemetry is not None and hasattr(telemetry, "state_lock"):
        telemetry.state_lock = threading.Lock()


def prepare_child(entropy: bytes | None = None) -> dict[str, Any]:
    """Everything a freshly forked child does before running the ClientApp."""
    reset_signal_handlers()
    sockets = neutralize_fds(inherited_socket_fds())
    logs = detach_log_files()
    reset_flwr_state()
    seeds = reseed(entropy)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
    return {"sockets": sockets, "log_files": logs, "seeds": seeds}


def flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()


def exit_code_of(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def fork_child(target, *args: Any) -> int:
    """``os.fork()``; the child runs ``target(*args)`` and always ends with ``os._exit``.

    Signals are blocked around the fork, so no launcher handler runs in the child before it
    resets them. Returns the child pid (in the parent).
    """
    flush_std_streams()
    blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = target(*args)
            code = 0 if code is None else int(code)
        except SystemExit as exc:  # flwr_exit ends with sys.exit
            code = exit_code_of(exc)
        except BaseException:  # noqa: BLE001 - a child must never return into the launcher loop
            traceback.print_exc()
            code = 1
        finally:
            flush_std_streams()
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return pid


def reap_children(usage: dict[int, float] | None = None) -> list[tuple[int, int]]:
    """``waitpid`` every finished child (also those forked before an ``execv`` restart).

    With ``usage``, each reaped child's CPU seconds (user + system, from ``wait4``) are stored
    under its pid.
    """
    done = []
    while True:
        try:
            pid, status, rusage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if usage is not None:
            usage[pid] = rusage.ru_utime + rusage.ru_stime
        done.append((pid, os.waitstatus_to_exitcode(status)))
    return done


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
