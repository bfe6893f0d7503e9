"""Fork-safety helpers of the warm ClientApp launcher (training/client/launcher.py)."""

import json
import logging
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from training.client import launcher as L


def _fork_and_report(target):
    """Run ``target()`` in a forked child (via the launcher's fork_child); return (exit code, JSON it wrote)."""
    r, w = os.pipe()

    def body():
        os.close(r)
        result = target()
        os.write(w, json.dumps(result).encode())
        os.close(w)

    pid = L.fork_child(body)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), (json.loads(data) if data else None)


def test_children_reseeded_differently_not_copies_of_the_parent():
    # given: a parent whose RNG state every child would otherwise inherit
    np.random.seed(123)
    parent_next = float(np.random.random())
    np.random.seed(123)

    def draw():
        L.prepare_child()
        import random

        import torch

        return [float(np.random.random()), random.random(), float(torch.rand(1).item())]

    # when
    (c1, a), (c2, b) = _fork_and_report(draw), _fork_and_report(draw)

    # then
    assert c1 == c2 == 0
    assert a != b
    assert a[0] != parent_next and b[0] != parent_next


def test_reseed_with_given_entropy_is_deterministic():
    import torch

    L.reseed(b"x" * 24)
    first = (float(np.random.random()), float(torch.rand(1).item()))
    L.reseed(b"x" * 24)
    assert (float(np.random.random()), float(torch.rand(1).item())) == first


def test_child_releases_inherited_sockets_without_breaking_the_parents_connection():
    # given: a connection the parent keeps using (like the launcher's HTTP keep-alive socket)
    ours, peer = socket.socketpair()

    def child():
        neutralized = L.inherited_socket_fds()
        L.neutralize_fds(neutralized)
        os.write(ours.fileno(), b"from-child")  # goes to /dev/null now, not to the peer
        ours.close()  # a stale object closing "its" fd must not shut the connection down
        return {"neutralized": neutralized, "left": L.inherited_socket_fds()}

    # when
    code, result = _fork_and_report(child)

    # then: the child saw and dropped the socket, the parent's connection still works both ways
    assert code == 0
    assert ours.fileno() in result["neutralized"] and result["left"] == []
    ours.sendall(b"ping")
    assert peer.recv(16) == b"ping"
    peer.sendall(b"pong")
    ours.settimeout(2)
    assert ours.recv(16) == b"pong"
    ours.close()
    peer.close()


def test_detach_log_files_keeps_child_out_of_the_launchers_log(tmp_path):
    # given: the launcher logs to a file
    path = tmp_path / "launcher.log"
    lg = logging.getLogger("test.launcher.detach")
    handler = logging.FileHandler(path)
    lg.addHandler(handler)
    lg.setLevel(logging.INFO)
    lg.info("parent line")
    handler.flush()

    def child():
        detached = L.detach_log_files()
        lg.info("child line")
        return {"detached": detached, "handlers": len(lg.handlers)}

    try:
        code, result = _fork_and_report(child)
        lg.info("parent again")
        handler.flush()
    finally:
        lg.removeHandler(handler)
        handler.close()

    assert code == 0
    assert str(path) in result["detached"] and result["handlers"] == 0
    assert path.read_text().splitlines() == ["parent line", "parent again"]


def test_child_forgets_flwr_exit_handlers_and_signal_handlers():
    from flwr.supercore.exit import exit_handler

    called = []

    def launcher_cleanup():
        called.append(True)

    exit_handler.add_exit_handler(launcher_cleanup)
    old = signal.signal(signal.SIGUSR1, lambda *a: None)
    try:

        def child():
            L.prepare_child()
            exit_handler.trigger_exit_handlers(run_before_force_exit=False)
            return {
                "handlers": len(exit_handler.registered_exit_handlers),
                "called": bool(called),
                "usr1_default": signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL,
            }

        code, result = _fork_and_report(child)
    finally:
        signal.signal(signal.SIGUSR1, old)
        exit_handler.registered_exit_handlers[:] = [
            h for h in exit_handler.registered_exit_handlers if h.exit_handler is not launcher_cleanup
        ]
    assert code == 0
    assert result == {"handlers": 0, "called": False, "usr1_default": True}


@pytest.mark.parametrize(
    ("raised", "expected"), [(SystemExit(0), 0), (SystemExit(3), 3), (SystemExit("x"), 1)]
)
def test_fork_child_maps_flwr_exit_to_the_exit_code_and_never_returns(raised, expected):
    def body():
        raise raised

    pid = L.fork_child(body)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == expected


def test_fork_child_exception_exits_1():
    def body():
        raise RuntimeError("boom")

    pid = L.fork_child(body)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 1


def test_reap_children_collects_exit_codes():
    pid = L.fork_child(lambda: 5)
    os.waitpid(pid, os.WNOHANG)  # may or may not be done yet
    reaped = []
    for _ in range(50):
        reaped += L.reap_children()
        if any(p == pid for p, _ in reaped):
            break
        import time

        time.sleep(0.05)
    assert (pid, 5) in reaped or not L.pid_exists(pid)


def test_preload_refuses_the_apps_own_code():
    assert L.check_preload(["torch", " numpy ", ""]) == ["torch", "numpy"]
    for name in ("training.flower_app", "training.flower_app.client_app", "task", "client_app"):
        with pytest.raises(ValueError, match="app code"):
            L.check_preload([name])
    assert not any(m.startswith("training.flower_app") for m in L.DEFAULT_PRELOAD)


def test_cli_accepts_flower_superexec_flags_and_aliases():
    a = L.parse_args(["--runtime-api-address", "127.0.0.1:9094", "--insecure", "--parent-pid", "7"])
    assert (a.runtime_api_address, a.insecure, a.parent_pid, a.runtime_dependency_install) == (
        "127.0.0.1:9094",
        True,
        7,
        False,
    )
    assert L.parse_args(["--supernode-appio", "h:1"]).runtime_api_address == "h:1"
    assert L.parse_args(["--appio-api-address", "h:2"]).runtime_api_address == "h:2"
    assert L.parse_args(["--supernode-appio", "h:1", "--no-restart-per-run"]).restart_per_run is False


def test_stats_file_round_trip(tmp_path):
    s = L.Stats(tmp_path / "s.jsonl")
    s.write("fork", child=1, task_id=2, run_id=3)
    s.write("exit", child=1, task_id=2, code=0)
    events = L.read_stats(tmp_path / "s.jsonl")
    assert [e["event"] for e in events] == ["fork", "exit"]
    assert events[0]["run_id"] == 3


def test_client_package_is_import_light():
    code = (
        "import sys, training.client, training.client.launcher, training.client.supernode\n"
        "heavy = [m for m in ('torch', 'flwr', 'django', 'numpy') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_supernode_commands_for_both_isolation_modes(tmp_path):
    from training.client import supernode as sn

    warm = sn.supernode_command(
        superlink="127.0.0.1:9093",
        runtime_port=9100,
        isolation="warm",
        root_certificates=tmp_path / "ca.crt",
        auth_private_key=tmp_path / "node",
        node_config={"partition-id": 0, "wallet": "0xabc"},
    )
    assert warm[warm.index("--isolation") + 1] == "process"
    assert warm[warm.index("--port") + 1] == "9100"
    assert "--insecure" not in warm
    stock = sn.supernode_command(superlink="127.0.0.1:9093", runtime_port=9100, isolation="subprocess")
    assert stock[stock.index("--isolation") + 1] == "subprocess" and "--insecure" in stock
    with pytest.raises(ValueError):
        sn.supernode_command(superlink="x:1", runtime_port=1, isolation="thread")
    cmd = sn.launcher_command(9100, 4242, stats_path=tmp_path / "s.jsonl")
    assert cmd[1:3] == ["-m", "training.client.launcher"]
    assert cmd[cmd.index("--runtime-api-address") + 1] == "127.0.0.1:9100"
    assert cmd[cmd.index("--parent-pid") + 1] == "4242" and "--insecure" in cmd


def test_reap_children_reports_each_childs_cpu_seconds():
    import time

    def spin():
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass
        return 0

    pid = L.fork_child(spin)
    usage: dict[int, float] = {}
    reaped = []
    for _ in range(200):
        reaped += L.reap_children(usage)
        if any(p == pid for p, _ in reaped):
            break
        time.sleep(0.02)
    assert (pid, 0) in reaped
    assert 0.15 <= usage[pid] < 5.0


CHILD_OPTIMIZER_IMPORTS = """
import json, os, sys
from training.client import launcher as L
L.preload(L.DEFAULT_PRELOAD)
r, w = os.pipe()
def body():
    L.prepare_child()
    import torch
    before = set(sys.modules)
    torch.optim.SGD(torch.nn.Linear(4, 2).parameters(), lr=0.1, momentum=0.9)
    os.write(w, json.dumps(sorted(m for m in set(sys.modules) - before if m.startswith("torch"))).encode())
pid = L.fork_child(body)
os.close(w)
data = os.read(r, 1 << 20)
os.waitpid(pid, 0)
print(data.decode())
"""


def test_default_preload_leaves_nothing_for_a_childs_optimizer_to_import():
    # torch.optim imports torch._dynamo lazily on the first optimizer (~1.5 CPU-s per ClientApp child,
    # found with the benchmark's phase trace): the launcher must import it before forking. A fresh
    # interpreter, since this test process may have imported torch._dynamo already.
    out = subprocess.run(
        [sys.executable, "-c", CHILD_OPTIMIZER_IMPORTS],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_trace_phases_logs_each_step_of_run_clientapp(tmp_path):
    import types

    calls = []

    def get_load_client_app_fn(**kwargs):
        def load(*args):
            return lambda **kw: calls.append(("app", kw)) or "reply"

        return load

    module = types.SimpleNamespace(
        pull_task_input=lambda client: calls.append("pull") or ("msg", "ctx", "run", "fab"),
        install_from_fab=lambda content, skip_prompt: calls.append("install"),
        push_message=lambda client, reply, ctx: calls.append("push"),
        get_load_client_app_fn=get_load_client_app_fn,
        flwr_exit=lambda code, event_type=None: calls.append(("exit", code)),
    )
    stats = L.Stats(tmp_path / "s.jsonl")

    # when: run_clientapp's sequence of calls, through the traced names
    L.trace_phases(module, stats, task_id=9)
    module.pull_task_input(None)
    module.install_from_fab(b"", skip_prompt=True)
    app = module.get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)("id", "1", "h")
    assert app(message="m", context="c") == "reply"
    module.push_message(None, "reply", "ctx")
    module.flwr_exit(0)

    # then: the real functions ran, and one phase event per step, in order
    assert calls == ["pull", "install", ("app", {"message": "m", "context": "c"}), "push", ("exit", 0)]
    phases = [e for e in L.read_stats(stats.path) if e["event"] == "phase"]
    assert [p["phase"] for p in phases] == [
        "pull_task_input",
        "install_from_fab",
        "load_clientapp",
        "clientapp",
        "push_message",
        "flwr_exit",
    ]
    assert all(p["task_id"] == 9 and p["start_s"] >= 0 for p in phases)
    assert all(p["dur_s"] >= 0 for p in phases[:-1])


def test_poll_interval_option_and_default(monkeypatch):
    assert L.parse_args(["--runtime-api-address", "x:1", "--poll-interval", "0.1"]).poll_interval == 0.1
    assert L.parse_args(["--runtime-api-address", "x:1"]).poll_interval is None
    assert L.DEFAULT_POLL_INTERVAL < 1.0  # flower-superexec's own interval is 1 s


def test_summarize_stats_per_child_life_cpu_and_phases(tmp_path):
    path = tmp_path / "node0.stats.jsonl"
    lines = [
        {"event": "start", "pid": 1, "t": 0.0},
        {"event": "fork", "pid": 1, "t": 10.0, "child": 7, "task_id": 1},
        {"event": "phase", "pid": 7, "t": 10.5, "phase": "clientapp", "start_s": 0.2, "dur_s": 0.3},
        {"event": "phase", "pid": 7, "t": 10.6, "phase": "flwr_exit", "start_s": 0.6},
        {"event": "exit", "pid": 1, "t": 11.0, "child": 7, "code": 0, "cpu_s": 0.2},
        {"event": "fork", "pid": 1, "t": 20.0, "child": 8, "task_id": 2},
        {"event": "exit", "pid": 1, "t": 23.0, "child": 8, "code": 0, "cpu_s": 0.4},
        {"event": "fork", "pid": 1, "t": 30.0, "child": 9, "task_id": 3},  # still running: left out
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    summary = L.summarize_stats([path])

    assert summary["life"] == {"n": 2, "mean": 2.0, "max": 3.0}
    assert summary["cpu"] == {"n": 2, "mean": 0.3, "max": 0.4}
    assert summary["clientapp"] == {"n": 1, "mean": 0.3, "max": 0.3}
    assert summary["exit"] == {"n": 1, "mean": 0.4, "max": 0.4}


class _FakeNode:
    def __init__(self, alive=True, fail_start=False):
        self._alive, self.fail_start = alive, fail_start
        self.restarts, self.revive_after, self.log_path = 0, 0.0, None

    def alive(self):
        return self._alive

    def exit_code(self):
        return None if self._alive else 1

    def restarted(self):
        if self.fail_start:
            raise OSError("SuperLink not reachable")
        new = _FakeNode()
        new.restarts = self.restarts + 1
        return new


def test_revive_restarts_stopped_supernodes_with_backoff_and_a_limit():
    from training.client import supernode as sn

    handles = {"a": _FakeNode(), "b": _FakeNode(alive=False)}
    said = []
    assert sn.revive(handles, log=said.append, backoff=60) == ["b"]
    assert handles["b"].alive() and handles["b"].restarts == 1 and handles["a"].restarts == 0
    assert "SuperNode b stopped (exit code 1); starting it again (1 of at most 5)" in said[0]
    # a node that stops again waits out its backoff before the next restart
    handles["b"]._alive = False
    assert sn.revive(handles, backoff=60) == []
    handles["b"].revive_after = 0.0
    assert sn.revive(handles) == ["b"] and handles["b"].restarts == 2
    # a restart that fails counts; past the limit the caller is told
    handles["b"] = _FakeNode(alive=False, fail_start=True)
    handles["b"].restarts = 4
    assert sn.revive(handles, max_restarts=5, log=said.append) == ["b"]
    assert "did not start: SuperLink not reachable" in said[-1] and handles["b"].restarts == 5
    handles["b"].revive_after = 0.0
    with pytest.raises(RuntimeError, match="SuperNode b stopped .* after 5 restart"):
        sn.revive(handles, max_restarts=5)
