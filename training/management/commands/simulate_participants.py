"""``manage.py simulate_participants``: honest and malicious participants with real SuperNodes.

Each simulated participant is a full participant, driven through the same client library as
``python -m training.client`` (``training.client.participant``), against the site's HTTP API:

1. its own state dir ``<VAR_DIR>/sim/<task>/p<i>/`` (a ``--home``) with a fresh wallet key file;
2. its own partition of a bundled dataset written to ``p<i>/data.npz`` (so the real
   "participant's own file" path, node config ``data-path``, is exercised);
3. SIWE login, local data check, signed EIP-712 Join (off chain: no gas, no funding);
4. waits until the platform has registered its SuperNode key, then starts a real SuperNode
   (warm isolation by default) with ``attack=<name>`` in the node config of malicious ones;
5. follows the task until its run ends (or ``--detach``: prints PIDs and leaves them running),
   then stops every process it started.

``<VAR_DIR>/sim/<task>/participants.json`` lists wallets, roles and PIDs.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from training import attacks, datasets
from training.client import api
from training.client import participant as client_lib
from training.client.home import CliError, Home
from training.client.procs import local_address
from training.client.supernode import revive
from training.client.wallet import load_wallet


class Command(BaseCommand):
    help = "Simulate honest and malicious participants of a task: wallets, SIWE, join, real SuperNodes."

    def add_arguments(self, parser):
        parser.add_argument("--task", type=int, required=True, help="task id (platform row id)")
        parser.add_argument("--honest", type=int, default=8)
        parser.add_argument("--malicious", type=int, default=0)
        parser.add_argument(
            "--attack",
            default="label_flip",
            help=f"attack of the malicious ones: {', '.join(attacks.names())} "
            "(options inline: 'scaling:factor=5')",
        )
        parser.add_argument("--site", default=getattr(settings, "BCFL_SITE_URL", "http://127.0.0.1:8000"))
        parser.add_argument("--superlink", default=local_address(settings.SUPERLINK_ADDRESS))
        parser.add_argument(
            "--root-cert",
            default=None,
            help="the SuperLink's CA certificate (default <VAR_DIR>/flwr/certs/ca.crt)",
        )
        parser.add_argument("--isolation", choices=("warm", "subprocess"), default="warm")
        parser.add_argument("--dataset", default="digits", choices=datasets.BUNDLED_DATASETS)
        parser.add_argument("--partitioning", default="iid", choices=("iid", "dirichlet"))
        parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet alpha (non-IID skew)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument(
            "--register-timeout",
            type=float,
            default=300.0,
            help="seconds to wait for the platform to register the nodes",
        )
        parser.add_argument(
            "--timeout", type=float, default=None, help="stop following after this many seconds"
        )
        parser.add_argument("--detach", action="store_true", help="leave the SuperNodes running; print PIDs")
        parser.add_argument("--workdir", default=None, help="default <VAR_DIR>/sim/<task>")
        parser.add_argument("--poll", type=float, default=3.0)

    def handle(self, *args, **o):
        n = o["honest"] + o["malicious"]
        if n < 1:
            raise CommandError("Need at least one participant (--honest/--malicious).")
        if o["malicious"]:
            try:
                attacks.get_attack(o["attack"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        base = Path(o["workdir"] or Path(settings.VAR_DIR) / "sim" / str(o["task"]))
        base.mkdir(parents=True, exist_ok=True)
        root_cert = Path(o["root_cert"] or Path(settings.VAR_DIR) / "flwr" / "certs" / "ca.crt")
        try:
            sim = Simulation(o["task"], base, site=o["site"], out=self.stdout, poll=o["poll"])
            sim.prepare(
                n,
                o["malicious"],
                o["attack"],
                dataset=o["dataset"],
                scheme=o["partitioning"],
                alpha=o["alpha"],
                seed=o["seed"],
            )
            sim.join_all()
            sim.wait_registered(o["register_timeout"])
        except (api.ApiError, CliError) as exc:
            raise CommandError(str(exc)) from exc
        stop = _install_signal_handlers()
        try:
            sim.start_nodes(superlink=o["superlink"], root_cert=root_cert, isolation=o["isolation"])
            if o["detach"]:
                sim.detach()
                return
            status = sim.follow(timeout=o["timeout"], should_stop=stop)
            self.stdout.write(f"Task {o['task']} is {status}.")
        except (api.ApiError, CliError) as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if not o["detach"]:
                sim.stop()


def _install_signal_handlers():
    flag = {"stop": False}

    def handler(signum, frame):
        flag["stop"] = True
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        try:
            signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread (tests)
            pass
    return lambda: flag["stop"]


class Simulation:
    """Participants of one task, each with its own home dir, wallet, data file and SuperNode."""

    def __init__(self, task_id: int, base: Path, *, site: str, out=sys.stdout, poll: float = 3.0):
        self.task_id = int(task_id)
        self.base = Path(base)
        self.site = site
        self.out = out
        self.poll = poll
        self.participants: list[dict] = []
        self.handles: dict[int, object] = {}

    def log(self, text: str) -> None:
        self.out.write(text + ("" if text.endswith("\n") else "\n"))
        if hasattr(self.out, "flush"):
            self.out.flush()

    def prepare(
        self, n: int, malicious: int, attack: str, *, dataset: str, scheme: str, alpha: float, seed: int
    ) -> None:
        ds = datasets.load_dataset(dataset)
        for i in range(n):
            home = Home(self.base / f"p{i}")
            home.path.mkdir(parents=True, exist_ok=True)
            key = home.default_key_path
            if not key.exists():
                client_lib.keygen(home, key)
            x, y = datasets.partition(ds.x_train, ds.y_train, i, n, scheme=scheme, alpha=alpha, seed=seed)
            data = home.path / "data.npz"
            with open(data, "wb") as f:
                np.savez(f, x=x, y=y)
            role = "malicious" if i >= n - malicious else "honest"
            wallet = load_wallet(key)
            self.participants.append(
                {
                    "index": i,
                    "home": home,
                    "key": key,
                    "data": data,
                    "role": role,
                    "attack": attack if role == "malicious" else "",
                    "wallet": wallet.address,
                    "examples": int(len(y)),
                }
            )
        self.log(
            f"{n} participants under {self.base} ({malicious} malicious: {attack if malicious else '-'}); "
            f"{dataset} {scheme} partitions of {', '.join(str(p['examples']) for p in self.participants)}"
        )

    def join_all(self) -> None:
        kept = []
        for p in self.participants:
            home = p["home"]
            client_lib.login(home, self.site, p["key"])
            existing = home.client().participation(self.task_id)
            if existing is not None:
                self.log(f"p{p['index']} {p['wallet']}: already joined ({existing['status']})")
                kept.append(p)
                continue
            try:
                client_lib.join(home, self.task_id, p["data"])
            except api.JoinRefused as exc:
                self.log(f"p{p['index']} {p['wallet']}: join refused: {exc}")
                continue
            except CliError as exc:
                self.log(f"p{p['index']} {p['wallet']}: cannot join: {exc}")
                continue
            self.log(
                f"p{p['index']} {p['wallet']}: joined ({p['role']}{' ' + p['attack'] if p['attack'] else ''})"
            )
            kept.append(p)
        if not kept:
            raise CliError("No simulated participant could join.")
        self.participants = kept
        self._write_manifest()

    def wait_registered(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.log(f"Waiting for the platform to register {len(self.participants)} node(s)…")
        for p in self.participants:
            remaining = max(1.0, deadline - time.monotonic())
            p["node_id"] = client_lib.wait_registered(p["home"], self.task_id, timeout=remaining, poll=1.0)
        self.log(
            "All nodes registered: " + ", ".join(f"p{p['index']}→{p['node_id']}" for p in self.participants)
        )

    def start_nodes(self, *, superlink: str, root_cert: Path, isolation: str) -> None:
        for p in self.participants:
            extra = {"partition-id": p["index"]}  # seeds differ per participant
            if p["attack"]:
                extra["attack"] = p["attack"]
            handle = client_lib.start_node(
                p["home"],
                self.task_id,
                p["data"],
                superlink=superlink,
                root_cert=root_cert,
                isolation=isolation,
                key_path=p["key"],
                extra_node_config=extra,
            )
            self.handles[p["index"]] = handle
            p["pids"] = [h.pid for h in (handle.supernode, handle.launcher) if h is not None]
        self.log(f"Started {len(self.handles)} SuperNode(s) ({isolation}) against {superlink}.")
        self._write_manifest()

    def follow(self, *, timeout: float | None = None, should_stop=lambda: False) -> str:
        client = self.participants[0]["home"].client()
        deadline = None if timeout is None else time.monotonic() + timeout
        last = ""
        while True:
            task = client.task(self.task_id)
            training = client.training(self.task_id)
            done, total = api.round_progress(
                task, None if training else client.rounds(self.task_id), training
            )
            trained = [len(client_lib.local_rounds(p["home"], self.task_id)) for p in self.participants]
            done = max([done, *trained])
            line = (
                f"{client_lib.progress_bar(done, total)} round {done}/{total} · task {task['status']} · "
                f"rounds trained per node {trained}"
            )
            if line != last:
                self.log(line)
                last = line
            if task["status"] in api.ENDED_STATUSES:
                return task["status"]
            try:  # a SuperNode that stopped (the SuperLink restarted) is started again, with backoff
                for i in revive(
                    self.handles,
                    max_restarts=client_lib.MAX_NODE_RESTARTS,
                    log=lambda m: self.log(m.replace("SuperNode ", "SuperNode of p", 1)),
                ):
                    h = self.handles[i]
                    part = next(p for p in self.participants if p["index"] == i)
                    part["pids"] = [x.pid for x in (h.supernode, h.launcher) if x is not None]
                    self._write_manifest()
            except RuntimeError as exc:
                raise CliError(f"{exc} (logs: {self.base}/p<i>/tasks/{self.task_id}/supernode.log)") from exc
            if should_stop() or (deadline is not None and time.monotonic() > deadline):
                return task["status"]
            time.sleep(self.poll)

    def detach(self) -> None:
        for p in self.participants:
            self.log(f"p{p['index']} {p['wallet']} {p['role']}: pids {' '.join(map(str, p.get('pids', [])))}")
        self.log(
            f"Left running; stop them with kill -TERM -<pid> (process groups). Manifest: {self.manifest}"
        )
        self.handles.clear()

    def stop(self) -> None:
        from training.client.supernode import stop_all

        handles = list(self.handles.values())
        self.handles.clear()
        if handles:
            stop_all(handles)
            self.log(f"Stopped {len(handles)} SuperNode(s).")

    @property
    def manifest(self) -> Path:
        return self.base / "participants.json"

    def _write_manifest(self) -> None:
        rows = [
            {k: (str(v) if isinstance(v, Path) else v) for k, v in p.items() if k != "home"}
            for p in self.participants
        ]
        self.manifest.write_text(
            json.dumps({"task": self.task_id, "site": self.site, "participants": rows}, indent=2)
        )
