"""The platform's Flower SuperLink: certificates, process, connection config, and flwr CLI calls.

Importable without Django. Layout under ``var_dir`` (default ``<repo>/var``)::

    <var>/flwr/certs/{ca.crt,ca.key,server.pem,server.key}   platform CA + server certificate
    <var>/flwr/superlink.db                                  SuperLink state (nodes, runs)
    <var>/flwr/superlink.log                                 SuperLink output

and ``$FLWR_HOME/config.toml`` (default ``<var>/flwr``) with the connection ``bcfl``. The
SuperLink and every SuperNode started here run with the repository on PYTHONPATH, because the
Flower app imports ``training.zoo`` and ``training.datasets`` and runtime dependency
installation is off.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_DIR = Path(__file__).resolve().parent.parent
APP_DIR = REPO_DIR / "training" / "flower_app"
DEFAULT_ADDRESS = "127.0.0.1:9093"
CONNECTION = "bcfl"
DEFAULT_CERT_HOSTS = ("127.0.0.1", "localhost")
BIN_DIR = Path(sys.executable).parent


class FlowerError(RuntimeError):
    """A flwr command or process failed; the message carries its output."""


class RunNotFound(FlowerError):
    """The SuperLink answered and does not know the run (it restarted with fresh in-memory state)."""


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
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


# --- certificates and keys ----------------------------------------------------------------------


def ensure_certs(certs_dir: str | Path, hosts: tuple[str, ...] = DEFAULT_CERT_HOSTS) -> dict[str, Path]:
    """Create the platform CA and a server certificate (SANs ``hosts``) once; reuse afterwards.

    When the existing server certificate does not name every host in ``hosts`` (e.g. the platform's public
    hostname was added to ``SUPERLINK_CERT_HOSTS``), a new server certificate is issued by the SAME CA, so the
    ``ca.crt`` participants already have stays valid.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    certs_dir = Path(certs_dir)
    paths = {
        "ca_cert": certs_dir / "ca.crt",
        "ca_key": certs_dir / "ca.key",
        "server_cert": certs_dir / "server.pem",
        "server_key": certs_dir / "server.key",
    }
    have_all = all(p.exists() for p in paths.values())
    if have_all and set(hosts) <= _cert_hosts(paths["server_cert"]):
        return paths
    certs_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def write_key(key, path: Path) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BCFL platform CA")])
    if have_all:  # keep the CA: participants trust it already
        ca_key = serialization.load_pem_private_key(paths["ca_key"].read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(paths["ca_cert"].read_bytes())
        ca_name = ca_cert.subject
    else:
        ca_key, ca_cert = _new_ca(ca_name, now)
    server_key = ec.generate_private_key(ec.SECP384R1())
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BCFL SuperLink")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )
    if not have_all:
        write_key(ca_key, paths["ca_key"])
        paths["ca_cert"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_key(server_key, paths["server_key"])
    paths["server_cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _new_ca(ca_name, now):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    return ca_key, ca_cert


def _cert_hosts(path: Path) -> set[str]:
    """The DNS names and IP addresses a certificate's subjectAltName covers."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def generate_node_key(path: str | Path) -> tuple[Path, Path]:
    """ECDSA P-384 key pair in OpenSSH format: ``path`` (private, 0600) and ``path.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub = path.with_name(path.name + ".pub")
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        + b"\n"
    )
    return path, pub


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
            flower_bin("flower-superlink"),
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
        write_connection(self.flwr_home, self.address, self.certs["ca_cert"], self.connection)
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
        from training.client.supernode import start_supernode

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
) -> int:
    """Start the SuperLink and block until SIGTERM/SIGINT, then stop it. Returns its exit code.

    ``on_started(link)`` runs once the SuperLink answers (the platform re-registers its nodes there).
    """
    link = SuperLink(
        var_dir=Path(var_dir),
        address=address,
        flwr_home=Path(flwr_home) if flwr_home else None,
        cert_hosts=tuple(cert_hosts),
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
