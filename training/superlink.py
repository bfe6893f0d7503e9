"""The platform's Flower SuperLink: certificates, process, connection config, and flwr CLI calls.

Importable without Django. Layout under ``var_dir`` (default ``<repo>/var``)::

    <var>/flwr/certs/{ca.crt,ca.key,server.pem,server.key}   platform CA + server certificate
    <var>/flwr/superlink.db                                  SuperLink state (nodes, runs)
    <var>/flwr/superlink.log                                 SuperLink output

and ``$FLWR_HOME/config.toml`` (default ``<var>/flwr``) with the connection ``bcfl``. The
SuperLink and every SuperNode started here run with the repository on PYTHONPATH, because the
Flower app imports ``training.zoo`` and ``training.datasets`` and runtime dependency
installation is off.

Process helpers shared with the participants' SuperNode starter live in ``training.client.procs`` (the
client never imports this module), the CA and server certificate in ``training.certs``; both are
re-exported here.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.certs import DEFAULT_CERT_HOSTS, ensure_certs
from training.client.node_key import generate_node_key
from training.client.procs import (
    BIN_DIR,
    FlowerError,
    flower_bin,
    format_config,
    free_port,
    local_address,
    process_env,
    stop_process,
    wait_for_port,
)

# Re-exported: callers (services, tests, benchmarks) import these from here.
__all__ = [
    "APP_DIR",
    "BIN_DIR",
    "CONNECTION",
    "DEFAULT_ADDRESS",
    "DEFAULT_CERT_HOSTS",
    "REPO_DIR",
    "FlowerError",
    "RunNotFound",
    "SuperLink",
    "ensure_certs",
    "flower_bin",
    "format_config",
    "free_port",
    "generate_node_key",
    "process_env",
    "run_forever",
    "stop_process",
    "wait_for_port",
    "write_connection",
]

REPO_DIR = Path(__file__).resolve().parent.parent
APP_DIR = REPO_DIR / "training" / "flower_app"
DEFAULT_ADDRESS = "127.0.0.1:9093"
CONNECTION = "bcfl"


class RunNotFound(FlowerError):
    """The SuperLink answered and does not know the run (it restarted with fresh in-memory state)."""


# --- connection config --------------------------------------------------------------------------


def write_connection(
    flwr_home: str | Path, address: str, ca_cert: str | Path, name: str = CONNECTION
) -> Path:
    """Set ``[superlink.<name>]`` in ``$FLWR_HOME/config.toml`` and make it the default; keeps others."""
    import tomli_w

    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
        import tomli as tomllib

    flwr_home = Path(flwr_home)
    flwr_home.mkdir(parents=True, exist_ok=True)
    path = flwr_home / "config.toml"
    data: dict[str, Any] = {}
    if path.exists():
        data = tomllib.loads(path.read_text())
    superlink = data.setdefault("superlink", {})
    superlink["default"] = name
    superlink[name] = {"address": address, "root-certificates": str(Path(ca_cert).resolve())}
    path.write_text(tomli_w.dumps(data))
    return path


# --- the SuperLink process ----------------------------------------------------------------------


@dataclass
class SuperLink:
    """One platform SuperLink with TLS and SuperNode authentication.

    ``start()`` creates certificates and the connection config on first use, launches
    ``flower-superlink`` and waits for its port. Use as a context manager or call ``stop()``.
    """

    var_dir: Path = field(default_factory=lambda: REPO_DIR / "var")
    address: str = DEFAULT_ADDRESS
    flwr_home: Path | None = None
    connection: str = CONNECTION
    cert_hosts: tuple[str, ...] = DEFAULT_CERT_HOSTS
    # SuperLink state (nodes, runs, messages). In memory by default: with a state file, flwr 1.42's SQLite
    # answers "database is locked" (HTTP 500) under ten busy SuperNodes and a reply is lost, stalling the
    # round until its timeout (seen in benchmarks/fl_overhead.py). The platform re-registers its nodes after
    # a restart from its own NodeRegistration rows (manage.py run_superlink), so nothing is lost with it.
    database: str | None = None
    # Peers that may call the Control and Runtime APIs (training.superlink_guard); others get the Fleet API only.
    control_hosts: tuple[str, ...] = ("127.0.0.1", "::1")
    proc: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.var_dir = Path(self.var_dir)
        self.flwr_home = Path(self.flwr_home) if self.flwr_home else self.var_dir / "flwr"

    @property
    def state_dir(self) -> Path:
        return self.var_dir / "flwr"

    @property
    def certs(self) -> dict[str, Path]:
        return ensure_certs(self.state_dir / "certs", tuple(self.cert_hosts))

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def env(self) -> dict[str, str]:
        return process_env(self.flwr_home)

    def command(self) -> list[str]:
        certs = self.certs
        return [
            sys.executable,
            "-m",
            "training.superlink_guard",  # flower-superlink, its public port narrowed to the Fleet API
            "--control-hosts",
            ",".join(self.control_hosts),
            "--ssl-ca-certfile",
            str(certs["ca_cert"]),
            "--ssl-certfile",
            str(certs["server_cert"]),
            "--ssl-keyfile",
            str(certs["server_key"]),
            "--enable-supernode-auth",
            "--disable-runtime-dependency-installation",
            *(["--database", str(self.database)] if self.database else []),
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]

    def start(self, timeout: float = 60.0, log_path: str | Path | None = None) -> SuperLink:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_connection(self.flwr_home, local_address(self.address), self.certs["ca_cert"], self.connection)
        log_path = Path(log_path) if log_path else self.state_dir / "superlink.log"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env,
                cwd=self.state_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its flower-superexec children share its process group
            )
        try:
            wait_for_port(self.host, self.port, timeout, self.proc)
        except BaseException:
            self.stop()
            raise
        return self

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, timeout)
        self.proc = None

    def __enter__(self) -> SuperLink:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- flwr CLI ---------------------------------------------------------------------------

    def flwr(self, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [flower_bin("flwr"), *args]
        res = subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, timeout=timeout, cwd=self.flwr_home
        )
        if check and res.returncode != 0:
            raise FlowerError(
                f"{shlex.join(cmd[1:])} exited {res.returncode}: {res.stdout.strip()} {res.stderr.strip()}".strip()
            )
        return res

    def flwr_json(self, *args: str, timeout: float = 120.0) -> dict[str, Any]:
        res = self.flwr(*args, "--format", "json", timeout=timeout, check=False)
        data = _last_json(res.stdout)
        if res.returncode != 0 or data is None or data.get("success") is False:
            detail = (data or {}).get("error-message") or res.stderr.strip() or res.stdout.strip()
            raise FlowerError(f"flwr {' '.join(args[:2])} failed (exit {res.returncode}): {detail}")
        return data

    def register_node(self, public_key: str | Path | bytes, name: str) -> int:
        """Register a SuperNode public key (OpenSSH path or text); returns the node id."""
        if isinstance(public_key, bytes):
            public_key = public_key.decode()
        if isinstance(public_key, str) and public_key.lstrip().startswith("ecdsa-"):
            with tempfile.NamedTemporaryFile("w", suffix=".pub", delete=False) as f:
                f.write(public_key.strip() + "\n")
            try:
                return self.register_node(Path(f.name), name)
            finally:
                os.unlink(f.name)
        data = self.flwr_json(
            "supernode", "register", str(Path(public_key).resolve()), self.connection, "--name", name
        )
        return int(data["node-id"])

    def unregister_node(self, node_id: int) -> None:
        self.flwr_json("supernode", "unregister", str(int(node_id)), self.connection)

    def list_nodes(self) -> list[dict[str, Any]]:
        return list(self.flwr_json("supernode", "ls", self.connection).get("nodes", []))

    def start_run(self, app_dir: str | Path = APP_DIR, run_config: Mapping[str, Any] | None = None) -> int:
        args = ["run", str(Path(app_dir).resolve()), self.connection]
        if run_config:
            args += ["--run-config", format_config(run_config)]
        return int(self.flwr_json(*args, timeout=300)["run-id"])

    def run_info(self, run_id: int) -> dict[str, Any]:
        try:
            runs = self.flwr_json("ls", self.connection, "--run-id", str(int(run_id))).get("runs", [])
        except FlowerError as exc:
            if "run id not found" in str(exc).lower():
                raise RunNotFound(f"the SuperLink does not know Flower run {run_id}") from exc
            raise
        if not runs:
            raise RunNotFound(f"the SuperLink does not know Flower run {run_id}")
        return runs[0]

    def run_status(self, run_id: int) -> str:
        """``pending``, ``starting``, ``running`` or ``finished:<completed|failed|stopped>``."""
        return str(self.run_info(run_id)["status"])

    def wait_run(self, run_id: int, timeout: float = 600.0, poll: float = 2.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status.startswith("finished"):
                return status
            time.sleep(poll)
        raise FlowerError(f"run {run_id} not finished after {timeout:.0f}s")

    def stop_run(self, run_id: int) -> None:
        self.flwr_json("stop", str(int(run_id)), self.connection)

    def run_logs(self, run_id: int, timeout: float = 60.0) -> str:
        return self.flwr(
            "log", str(int(run_id)), self.connection, "--show", timeout=timeout, check=False
        ).stdout

    # --- SuperNodes -------------------------------------------------------------------------

    def start_supernode(
        self,
        port: int,
        node_key_path: str | Path,
        node_config: Mapping[str, Any],
        isolation: str = "subprocess",
        log_path: str | Path | None = None,
    ):
        """A participant SuperNode for this SuperLink (TLS with the platform CA, authenticated by its key).

        Same starter as the participant client (``training.client.supernode.start_supernode``);
        returns its ``SuperNodeHandle`` (call ``stop()``). For tests and local demos.
        """
        from training.client.supernode import start_supernode  # the client does not import this module

        return start_supernode(
            superlink=self.address,
            isolation=isolation,
            runtime_port=port,
            root_certificates=self.certs["ca_cert"],
            auth_private_key=node_key_path,
            node_config=node_config,
            flwr_home=self.flwr_home / "supernodes" / f"node-{int(port)}",
            log_path=log_path,
        )


def _last_json(text: str) -> dict[str, Any] | None:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        start = text.rfind("\n{")
        start = 0 if start < 0 else start + 1
        while start >= 0:
            try:
                return json.loads(text[start:])
            except json.JSONDecodeError:
                start = text.rfind("{", 0, start)
        return None


def run_forever(
    var_dir: str | Path,
    address: str = DEFAULT_ADDRESS,
    flwr_home: str | Path | None = None,
    cert_hosts: tuple[str, ...] = DEFAULT_CERT_HOSTS,
    on_started: Callable[[SuperLink], object] | None = None,
    control_hosts: tuple[str, ...] = ("127.0.0.1", "::1"),
) -> int:
    """Start the SuperLink and block until SIGTERM/SIGINT, then stop it. Returns its exit code.

    ``on_started(link)`` runs once the SuperLink answers (the platform re-registers its nodes there).
    """
    link = SuperLink(
        var_dir=Path(var_dir),
        address=address,
        flwr_home=Path(flwr_home) if flwr_home else None,
        cert_hosts=tuple(cert_hosts),
        control_hosts=tuple(control_hosts),
    )
    stopping = False

    def _handle(signum, frame):
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    old = {s: signal.signal(s, _handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        link.start()
        if on_started is not None:
            on_started(link)
        print(
            f"SuperLink listening on {address} (FLWR_HOME={link.flwr_home}, connection '{link.connection}')",
            flush=True,
        )
        return link.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        link.stop()
        for s, h in old.items():
            signal.signal(s, h)
