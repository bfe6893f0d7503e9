"""Start and stop a real anvil node (from npm) for tests, benchmarks and `make demo`.

Importable without Django.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from contracts.devkeys import ANVIL_DEV_KEYS

ROOT = Path(__file__).resolve().parent.parent
ANVIL_BIN = ROOT / "node_modules" / ".bin" / "anvil"

DEV_KEYS = list(ANVIL_DEV_KEYS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc(url: str, method: str, params: list | None = None, timeout: float = 5.0):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local URL only
        payload = json.loads(resp.read())
    if "error" in payload:
        raise RuntimeError(payload["error"])
    return payload["result"]


@dataclass
class Anvil:
    port: int = field(default_factory=free_port)
    chain_id: int = 31337
    state_path: Path | None = None
    block_time: float | None = None
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Anvil:
        if not ANVIL_BIN.exists():
            raise RuntimeError(f"anvil not found at {ANVIL_BIN}: run `npm ci` first")
        cmd = [
            str(ANVIL_BIN),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--silent",
            "--gas-limit",
            "60000000",
        ]
        if self.state_path:
            cmd += ["--state", str(self.state_path), "--state-interval", "1"]
        if self.block_time:
            cmd += ["--block-time", str(self.block_time)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"anvil exited with code {self.proc.returncode}")
            try:
                rpc(self.url, "eth_chainId", timeout=1)
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("anvil did not answer in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # Convenience wrappers over anvil's cheat RPCs.
    def snapshot(self) -> str:
        return rpc(self.url, "evm_snapshot")

    def revert(self, snap_id: str) -> bool:
        return rpc(self.url, "evm_revert", [snap_id])

    def mine(self, blocks: int = 1) -> None:
        rpc(self.url, "anvil_mine", [hex(blocks)])

    def set_automine(self, on: bool) -> None:
        rpc(self.url, "evm_setAutomine", [on])


if os.environ.get("ANVIL_DEBUG"):
    print(ANVIL_BIN)
