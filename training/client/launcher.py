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
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from training.client.forking import (
    FORBIDDEN_PRELOAD_PREFIXES,
    check_preload,
    detach_log_files,
    exit_code_of,
    flush_std_streams,
    fork_child,
    inherited_socket_fds,
    neutralize_fds,
    pid_exists,
    preload,
    prepare_child,
    reap_children,
    reseed,
    reset_flwr_state,
    reset_signal_handlers,
)
from training.client.launcher_child import ClientAppSpec, run_clientapp_child, trace_phases
from training.client.launcher_stats import Stats, read_stats, summarize_stats

# Re-exported: the launcher's helpers as tests and benchmarks import them.
__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_PRELOAD",
    "FORBIDDEN_PRELOAD_PREFIXES",
    "RESTART_ENV",
    "ClientAppSpec",
    "Stats",
    "check_preload",
    "detach_log_files",
    "exit_code_of",
    "flush_std_streams",
    "fork_child",
    "inherited_socket_fds",
    "main",
    "neutralize_fds",
    "parse_args",
    "pid_exists",
    "prepare_child",
    "preload",
    "read_stats",
    "reap_children",
    "reseed",
    "reset_flwr_state",
    "reset_signal_handlers",
    "run_clientapp_child",
    "summarize_stats",
    "trace_phases",
]

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
RESTART_ENV = "BCFL_LAUNCHER_GENERATION"
RUNS_ENV = "BCFL_LAUNCHER_RUNS"
# Seconds between AcquireTask polls of the SuperNode (a loopback HTTP call). flower-superexec polls
# every 1 s; 0.25 s takes ~0.4 s off each round's latency on average for ~1 ms of CPU per poll.
DEFAULT_POLL_INTERVAL = 0.25


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


def _flwr_runtime() -> SimpleNamespace:
    """The flwr pieces ``run_superexec`` polls with (imported once, after the preload)."""
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.auth import load_superexec_auth_secret
    from flwr.supercore.constant import TaskType
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor, SuperExecAuthHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient
    from flwr.supercore.runtime.tracing import RuntimeTracingInterceptor
    from flwr.supercore.superexec.run_superexec import _SUPEREXEC_AUTH_METHODS, _get_task_poll_interval
    from flwr.supercore.tls import validate_and_resolve_root_certificates

    return SimpleNamespace(
        AcquireTaskRequest=AcquireTaskRequest,
        load_superexec_auth_secret=load_superexec_auth_secret,
        TaskType=TaskType,
        RuntimeVersionHttpInterceptor=RuntimeVersionHttpInterceptor,
        SuperExecAuthHttpInterceptor=SuperExecAuthHttpInterceptor,
        make_simple_http_retry_invoker=make_simple_http_retry_invoker,
        RuntimeHttpClient=RuntimeHttpClient,
        RuntimeTracingInterceptor=RuntimeTracingInterceptor,
        SUPEREXEC_AUTH_METHODS=_SUPEREXEC_AUTH_METHODS,
        get_task_poll_interval=_get_task_poll_interval,
        validate_and_resolve_root_certificates=validate_and_resolve_root_certificates,
    )


def _connect(args: argparse.Namespace, rt: SimpleNamespace) -> tuple[Any, bytes | None, float]:
    """``(client, root certificates, poll interval)``: the Runtime API client ``flower-superexec`` would use."""
    # --poll-interval, else flwr's FLWR_SUPEREXEC_TASK_POLL_INTERVAL, else 0.25 s (flower-superexec: 1 s).
    poll_interval = args.poll_interval or (
        rt.get_task_poll_interval()
        if os.environ.get("FLWR_SUPEREXEC_TASK_POLL_INTERVAL")
        else DEFAULT_POLL_INTERVAL
    )
    certificates = rt.validate_and_resolve_root_certificates(args.root_certificates, args.insecure)
    interceptors: list[Any] = [
        rt.RuntimeTracingInterceptor(),
        rt.RuntimeVersionHttpInterceptor(component_name="SuperExec"),
    ]
    if args.superexec_auth_secret_file:
        secret = rt.load_superexec_auth_secret(secret_file=args.superexec_auth_secret_file)
        interceptors.append(
            rt.SuperExecAuthHttpInterceptor(master_secret=secret, protected_methods=rt.SUPEREXEC_AUTH_METHODS)
        )
    client = rt.RuntimeHttpClient.from_server_address(
        server_address=args.runtime_api_address,
        insecure=args.insecure,
        root_certificates=certificates,
        interceptors=interceptors,
        retry_invoker=rt.make_simple_http_retry_invoker(),
    )
    return client, certificates, poll_interval


@dataclass
class _Launcher:
    """The polling loop: reap finished children, acquire a ClientApp task, fork a child for it."""

    args: argparse.Namespace
    stats: Stats
    generation: int
    rt: SimpleNamespace  # from _flwr_runtime()
    client: Any
    certificates: bytes | None
    poll_interval: float
    children: dict[int, int] = field(default_factory=dict)  # pid -> task_id
    cpu: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds of a reaped child
    served_runs: set[int] = field(default_factory=set)

    def serve(self) -> bool:
        """Poll until the parent is gone or a signal arrives; True when a new run needs a fresh launcher."""
        try:
            while True:
                action = self.step()
                if action in ("stop", "restart"):
                    return action == "restart"
                if action == "next":
                    time.sleep(self.poll_interval)
        except _Stop as stop:
            log.info("signal %s: stopping", stop.args[0])
            return False
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            with contextlib.suppress(Exception):
                self.client.close()

    def step(self) -> str:
        """One poll: ``"stop"`` (parent gone), ``"restart"``, ``"again"`` (already waited) or ``"next"``."""
        for pid, code in reap_children(self.cpu):
            task_id = self.children.pop(pid, None)
            cpu_s = round(self.cpu.pop(pid, 0.0), 3)
            self.stats.write("exit", child=pid, task_id=task_id, code=code, cpu_s=cpu_s)
        if self.args.parent_pid is not None and not pid_exists(self.args.parent_pid):
            log.info("parent %d is gone; stopping", self.args.parent_pid)
            return "stop"
        task_type = self.rt.TaskType.CLIENT_APP
        try:
            res = self.client.AcquireTask(
                self.rt.AcquireTaskRequest(supported_task_types=[task_type], agentapp_fab_hashes=[])
            )
        except Exception as err:  # noqa: BLE001 - SuperNode restarting; the parent check ends us
            log.warning("AcquireTask failed: %s", err)
            time.sleep(max(self.poll_interval, 1.0))
            return "again"
        if res.HasField("task") and res.token and self.fork_task(res.task, res.token):
            return "restart"
        return "next"

    def fork_task(self, task: Any, token: str) -> bool:
        """Fork a child for one acquired task; True when it is the first task of a new run (restart)."""
        if task.type != self.rt.TaskType.CLIENT_APP:  # pragma: no cover - we only ask for ClientApps
            log.error("acquired unsupported task type %r (task %d)", task.type, task.task_id)
            return False
        new_run = bool(self.served_runs) and task.run_id not in self.served_runs
        spec = ClientAppSpec(
            runtime_api_address=self.args.runtime_api_address,
            token=token,
            insecure=self.args.insecure,
            certificates=self.certificates,
            parent_pid=os.getpid(),
            runtime_dependency_install=self.args.runtime_dependency_install,
            task_id=task.task_id,
            run_id=task.run_id,
        )
        pid = fork_child(run_clientapp_child, spec, self.stats if self.args.trace_phases else None)
        self.children[pid] = task.task_id
        self.served_runs.add(task.run_id)
        self.stats.write("fork", child=pid, task_id=task.task_id, run_id=task.run_id)
        return new_run and self.args.restart_per_run

    def restart(self) -> None:
        """Fresh launcher for the new run, same pid (``execve``; does not return).

        Running children stay our children (and their parent monitor keeps seeing us); the new image
        reaps them with waitpid(-1).
        """
        self.stats.write("restart", generation=self.generation, runs=sorted(self.served_runs))
        log.info("new run: restarting the launcher (execv)")
        flush_std_streams()
        env = dict(os.environ)
        env[RESTART_ENV] = str(self.generation + 1)
        env[RUNS_ENV] = ",".join(str(r) for r in sorted(self.served_runs)[-16:])
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # noqa: S606


def main(argv: Sequence[str] | None = None) -> int:
    """Run the launcher until its SuperNode (``--parent-pid``) ends or SIGTERM/SIGINT; returns 0."""
    args = parse_args(argv)
    _setup_logging(args.log_file)
    stats = Stats(args.stats_file)
    generation = int(os.environ.get(RESTART_ENV, "0"))
    t0 = time.monotonic()
    # Import once. No torch compute and no threads from here on.
    preloaded = preload([*DEFAULT_PRELOAD, *args.preload])
    rt = _flwr_runtime()
    import_s = time.monotonic() - t0
    launcher = _Launcher(args, stats, generation, rt, *_connect(args, rt))
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
    launcher.served_runs.update(int(r) for r in filter(None, os.environ.get(RUNS_ENV, "").split(",")))
    stats.write("start", generation=generation, import_s=round(import_s, 3), preloaded=preloaded)
    log.info(
        "warm launcher up (generation %d, imports %.1fs), polling %s every %.2fs",
        generation,
        import_s,
        args.runtime_api_address,
        launcher.poll_interval,
    )
    if launcher.serve():
        launcher.restart()
    _stop_children(launcher.children, args.stop_grace, stats)
    stats.write("stop", generation=generation)
    return 0


def _stop_children(children: dict[int, int], grace: float, stats: Stats) -> None:
    """SIGTERM every child, reap for ``grace`` seconds, then SIGKILL and reap the rest."""
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
