"""The participant's local state directory (``~/.bcfl``, ``--home`` or ``$BCFL_HOME``) and the CLI's error.

Layout::

    <home>/config.json            site, API token, wallet address, wallet key path (0600)
    <home>/wallet.key             default wallet key file (``keygen``; 0600)
    <home>/tasks/<id>/node_key    the SuperNode's ECDSA P-384 key pair for task <id> (+ .pub)
    <home>/tasks/<id>/progress.jsonl, supernode.log, flwr/   training run files
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from training.client import api
from training.client.wallet import Wallet, load_wallet

DEFAULT_HOME = "~/.bcfl"


class CliError(RuntimeError):
    """A problem to print in plain words (exit code ``code``)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


class Home:
    """The participant's local state directory."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path or os.environ.get("BCFL_HOME") or DEFAULT_HOME).expanduser().resolve()

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def default_key_path(self) -> Path:
        return self.path / "wallet.key"

    def config(self) -> dict[str, Any]:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(
                f"Cannot read {self.config_path}: {exc}. Delete it and run `login` again."
            ) from exc

    def save_config(self, **values: Any) -> dict[str, Any]:
        data = {**self.config(), **values}
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        tmp = self.config_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, self.config_path)
        return data

    def client(self, site: str | None = None, *, need_login: bool = False) -> api.Client:
        cfg = self.config()
        site = site or cfg.get("site")
        if not site:
            raise CliError("No site known. Run `login --site URL --key FILE` first (or pass --site).")
        token = cfg.get("token") if api.normalise_site(site) == cfg.get("site") else None
        if need_login and not token:
            raise CliError(f"You are not logged in to {site}. Run `login --site {site} --key FILE` first.")
        return api.Client(site, token=token)

    def wallet(self, key_path: str | Path | None = None) -> Wallet:
        path = key_path or self.config().get("key_path")
        if not path:
            raise CliError(
                "No wallet key file known. Run `login --site URL --key FILE` first (or pass --key)."
            )
        return load_wallet(path)

    def task_dir(self, task_id: int) -> Path:
        d = self.path / "tasks" / str(int(task_id))
        d.mkdir(parents=True, exist_ok=True)
        return d

    def node_key(self, task_id: int, *, create: bool = True) -> tuple[Path, str]:
        """(private key path, public key text) of this task's SuperNode key; generated on first use."""
        from training.client.node_key import generate_node_key

        priv = self.task_dir(task_id) / "node_key"
        pub = priv.with_name("node_key.pub")
        if not (priv.exists() and pub.exists()):
            if not create:
                raise CliError(f"No SuperNode key for task {task_id}; run `join` first.")
            generate_node_key(priv)
        return priv, pub.read_text().strip()
