"""Warm ClientApp launcher: a drop-in for ``flower-superexec`` beside a ``--isolation process`` SuperNode.

Flower 1.42's ``flower-superexec`` polls the SuperNode's Runtime ("ClientAppIo") API with
``AcquireTask`` and starts a fresh ``flwr-clientapp`` interpreter for every task, i.e. for
every message: about 5 CPU-s of importing torch and flwr against a fraction of a second of
training. This launcher imports torch and flwr ONCE, polls exactly like ``run_superexec``
(same client, interceptors, retry invoker, poll interval, ``AcquireTaskRequest``), and for
each acquired ClientApp task ``os.fork()``s a child that calls flwr's own
``flwr.supernode.runtime.run_clientapp.run_clientapp`` with the same arguments
``flwr-clientapp`` would get from the ``SubprocessExecutor`` command line.

Fork-safety rules (see ARCHITECTURE.md section 5, "Speed"):

* the launcher never runs torch compute (no tensor op, no ``set_num_threads``) and starts
  no threads of its own, so a child's first multi-threaded op cannot hang on a pool or
  lock copied mid-use;
* it never imports the app's own code (``training.flower_app``); each child loads the
  ClientApp from the installed FAB like ``flwr-clientapp`` does;
* each child reseeds ``random``/numpy/torch from fresh OS entropy (a fresh interpreter's
  state), drops the parent's flwr exit handlers and signal handlers, re-creates the module
  locks it may need, and replaces every inherited socket (the launcher's HTTP keep-alive
  connection, any gRPC channel) and the launcher's log files by ``/dev/null`` *without*
  shutting them down, so the parent's connections stay intact;
* children end with ``os._exit`` so no inherited ``atexit`` hook runs twice;
* the launcher restarts itself (``execv``, same pid) when the first task of a new run
  arrives, after forking that task's child, so every run is served by a fresh launcher.
  A reused long-lived worker process does not work: flwr ends a ClientApp's process
  about 5 s after it finishes.

Run: ``python -m training.client.launcher --runtime-api-address 127.0.0.1:9094 --insecure
--parent-pid <supernode pid>`` (``--supernode-appio`` and ``--appio-api-address`` are
accepted aliases). Heavy imports happen in :func:`main`, so the helpers below can be
imported and unit-tested cheaply.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import signal
import stat
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("bcfl.launcher")

# What `flwr-clientapp` imports, plus torch/numpy (the ClientApp's own heavy dependencies).
DEFAULT_PRELOAD: tuple[str, ...] = (
    "numpy",
    "torch",
    "torch.nn",
    "torch.optim",
    "torch._dynamo",  # torch.optim imports it lazily on the first optimizer: ~1.5 CPU-s per child otherwise
    "flwr.app",
    "flwr.clientapp",
    "flwr.supernode.runtime.run_clientapp",
)
# Never preloaded: the app's own code must be imported fresh in every child.
FORBIDDEN_PRELOAD_PREFIXES: tuple[str, ...] = ("training.flower_app", "client_app", "server_app", "task")
# Signals whose launcher handlers a child must not keep.
_CHILD_RESET_SIGNALS = tuple(
    s for s in ("SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGCHLD", "SIGUSR1") if hasattr(signal, s)
)
RESTART_ENV = "BCFL_LAUNCHER_GENERATION"
# Seconds between AcquireTask polls of the SuperNode (a loopback HTTP call). flower-superexec polls
# every 1 s; 0.25 s takes ~0.4 s off each round's latency on average for ~1 ms of CPU per poll.
DEFAULT_POLL_INTERVAL = 0.25


# --- fork-safety helpers (no flwr/torch needed) ----------------------------------------------


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


class Stats:
    """JSON-lines event log (open-append-close per line: no fd for children to inherit)."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            return
        line = json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **fields})
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def read_stats(path: str | os.PathLike) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def summarize_stats(paths: Iterable[str | os.PathLike]) -> dict[str, dict[str, float]]:
    """Per-child figures from launcher stats files: ``life`` (fork to reaped), ``cpu`` and, when traced,
    each phase's duration and ``exit`` (from ``flwr_exit`` to reaped). Each: n, mean, max (seconds)."""
    samples: dict[str, list[float]] = {}
    for path in paths:
        events = read_stats(path)
        forks = {e["child"]: e for e in events if e["event"] == "fork"}
        exits = {e["child"]: e for e in events if e["event"] == "exit"}
        phases: dict[int, list[dict[str, Any]]] = {}
        for e in events:
            if e["event"] == "phase":
                phases.setdefault(e["pid"], []).append(e)
        for pid, fork in forks.items():
            end = exits.get(pid)
            if end is None:
                continue
            life = end["t"] - fork["t"]
            samples.setdefault("life", []).append(life)
            if "cpu_s" in end:
                samples.setdefault("cpu", []).append(end["cpu_s"])
            for p in phases.get(pid, []):
                if "dur_s" in p:
                    samples.setdefault(p["phase"], []).append(p["dur_s"])
                else:
                    samples.setdefault("exit", []).append(max(0.0, life - p["start_s"]))
    return {
        k: {"n": len(v), "mean": round(sum(v) / len(v), 3), "max": round(max(v), 3)}
        for k, v in samples.items()
        if v
    }


# --- the ClientApp child ------------------------------------------------------------------------


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
                    "phase", task_id=task_id, phase=name,
                    start_s=round(start - t0, 3), dur_s=round(time.monotonic() - start, 3),
                )  # fmt: skip

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


# --- the launcher process -----------------------------------------------------------------------


class _Stop(BaseException):  # not swallowed by `except Exception`
    pass


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.client.launcher",
        description="Warm ClientApp launcher (forking replacement for flower-superexec).",
    )
    parser.add_argument(
        "--runtime-api-address",
        "--supernode-appio",
        "--appio-api-address",
        dest="runtime_api_address",
        required=True,
        help="SuperNode Runtime API address host:port (flower-supernode --host/--port)",
    )
    parser.add_argument("--insecure", action="store_true", help="plain HTTP to the Runtime API")
    parser.add_argument("--root-certificates", metavar="ROOT_CERT", default=None)
    parser.add_argument("--parent-pid", type=int, default=None, help="exit when this process ends")
    parser.add_argument("--superexec-auth-secret-file", default=None)
    deps = parser.add_mutually_exclusive_group()
    deps.add_argument(
        "--allow-runtime-dependency-installation", dest="runtime_dependency_install", action="store_true"
    )
    deps.add_argument(
        "--disable-runtime-dependency-installation", dest="runtime_dependency_install", action="store_false"
    )
    parser.set_defaults(runtime_dependency_install=False)
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        metavar="MODULE",
        help="extra module to import once before forking (never the app's own code)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help=f"seconds between AcquireTask polls (default {DEFAULT_POLL_INTERVAL})",
    )
    parser.add_argument("--stats-file", default=None, help="JSON-lines log of starts, forks and exits")
    parser.add_argument(
        "--trace-phases",
        action="store_true",
        help="also log each ClientApp child's steps (pull, install, load, run, push, exit) to --stats-file",
    )
    parser.add_argument("--log-file", default=None)
    parser.add_argument(
        "--no-restart-per-run",
        dest="restart_per_run",
        action="store_false",
        help="keep serving new runs from the same launcher process",
    )
    parser.add_argument("--stop-grace", type=float, default=10.0, help="seconds children get on shutdown")
    return parser.parse_args(argv)


def _setup_logging(log_file: str | None) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s launcher[%(process)d] %(message)s")
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(fmt)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: Sequence[str] | None = None) -> int:  # noqa: C901 - mirrors run_superexec's loop
    args = parse_args(argv)
    _setup_logging(args.log_file)
    stats = Stats(args.stats_file)
    generation = int(os.environ.get(RESTART_ENV, "0"))
    t0 = time.monotonic()

    # Import once. No torch compute and no threads from here on.
    preloaded = preload([*DEFAULT_PRELOAD, *args.preload])
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.auth import load_superexec_auth_secret
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor, SuperExecAuthHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient
    from flwr.supercore.runtime.tracing import RuntimeTracingInterceptor
    from flwr.supercore.superexec.run_superexec import _SUPEREXEC_AUTH_METHODS, _get_task_poll_interval
    from flwr.supercore.tls import validate_and_resolve_root_certificates

    import_s = time.monotonic() - t0
    # --poll-interval, else flwr's FLWR_SUPEREXEC_TASK_POLL_INTERVAL, else 0.25 s (flower-superexec: 1 s).
    poll_interval = args.poll_interval or (
        _get_task_poll_interval()
        if os.environ.get("FLWR_SUPEREXEC_TASK_POLL_INTERVAL")
        else DEFAULT_POLL_INTERVAL
    )
    certificates = validate_and_resolve_root_certificates(args.root_certificates, args.insecure)
    interceptors: list[Any] = [
        RuntimeTracingInterceptor(),
        RuntimeVersionHttpInterceptor(component_name="SuperExec"),
    ]
    if args.superexec_auth_secret_file:
        secret = load_superexec_auth_secret(secret_file=args.superexec_auth_secret_file)
        interceptors.append(
            SuperExecAuthHttpInterceptor(master_secret=secret, protected_methods=_SUPEREXEC_AUTH_METHODS)
        )
    client = RuntimeHttpClient.from_server_address(
        server_address=args.runtime_api_address,
        insecure=args.insecure,
        root_certificates=certificates,
        interceptors=interceptors,
        retry_invoker=make_simple_http_retry_invoker(),
    )
    if threading.active_count() != 1:
        log.warning(
            "launcher has %d threads before forking: %s",
            threading.active_count(),
            [t.name for t in threading.enumerate()],
        )

    def _on_signal(signum, frame):
        raise _Stop(signum)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    children: dict[int, int] = {}  # pid -> task_id
    cpu: dict[int, float] = {}  # pid -> CPU seconds of a reaped child
    served_runs: set[int] = set()
    for run_id in filter(None, os.environ.get("BCFL_LAUNCHER_RUNS", "").split(",")):
        served_runs.add(int(run_id))
    stats.write("start", generation=generation, import_s=round(import_s, 3), preloaded=preloaded)
    log.info(
        "warm launcher up (generation %d, imports %.1fs), polling %s every %.2fs",
        generation,
        import_s,
        args.runtime_api_address,
        poll_interval,
    )
    restart = False
    try:
        while True:
            for pid, code in reap_children(cpu):
                task_id = children.pop(pid, None)
                stats.write("exit", child=pid, task_id=task_id, code=code, cpu_s=round(cpu.pop(pid, 0.0), 3))
            if args.parent_pid is not None and not pid_exists(args.parent_pid):
                log.info("parent %d is gone; stopping", args.parent_pid)
                break
            try:
                res = client.AcquireTask(
                    AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP], agentapp_fab_hashes=[])
                )
            except Exception as err:  # noqa: BLE001 - SuperNode restarting; the parent check ends us
                log.warning("AcquireTask failed: %s", err)
                time.sleep(max(poll_interval, 1.0))
                continue
            if res.HasField("task") and res.token:
                task = res.task
                if task.type != TaskType.CLIENT_APP:  # pragma: no cover - we only ask for ClientApps
                    log.error("acquired unsupported task type %r (task %d)", task.type, task.task_id)
                else:
                    new_run = bool(served_runs) and task.run_id not in served_runs
                    spec = ClientAppSpec(
                        runtime_api_address=args.runtime_api_address,
                        token=res.token,
                        insecure=args.insecure,
                        certificates=certificates,
                        parent_pid=os.getpid(),
                        runtime_dependency_install=args.runtime_dependency_install,
                        task_id=task.task_id,
                        run_id=task.run_id,
                    )
                    pid = fork_child(run_clientapp_child, spec, stats if args.trace_phases else None)
                    children[pid] = task.task_id
                    served_runs.add(task.run_id)
                    stats.write("fork", child=pid, task_id=task.task_id, run_id=task.run_id)
                    if new_run and args.restart_per_run:
                        restart = True
                        break
            time.sleep(poll_interval)
    except _Stop as stop:
        log.info("signal %s: stopping", stop.args[0])
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(Exception):
            client.close()
    if restart:
        # Fresh launcher for the new run, same pid: running children stay our children (and
        # their parent monitor keeps seeing us); the new image reaps them with waitpid(-1).
        stats.write("restart", generation=generation, runs=sorted(served_runs))
        log.info("new run: restarting the launcher (execv)")
        flush_std_streams()
        env = dict(os.environ)
        env[RESTART_ENV] = str(generation + 1)
        env["BCFL_LAUNCHER_RUNS"] = ",".join(str(r) for r in sorted(served_runs)[-16:])
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # noqa: S606
    _stop_children(children, args.stop_grace, stats)
    stats.write("stop", generation=generation)
    return 0


def _stop_children(children: dict[int, int], grace: float, stats: Stats) -> None:
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while children and time.monotonic() < deadline:
        for pid, code in reap_children():
            stats.write("exit", child=pid, task_id=children.pop(pid, None), code=code)
        time.sleep(0.1)
    for pid in list(children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        stats.write("exit", child=pid, task_id=children.pop(pid, None), code=-9)


if __name__ == "__main__":
    sys.exit(main())
