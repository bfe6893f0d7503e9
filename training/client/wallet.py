"""The participant's wallet key file: create, load, sign. Never leaves the machine.

Two formats:

* plain hex (``0x`` + 64 hex digits, one line), file mode 0600: refused when group/others can read it;
* an Ethereum keystore JSON (V3, as geth/MetaMask export it), decrypted with the password from
  the environment variable ``BCFL_KEY_PASSWORD`` (or the one named by ``password_env``).

Importable without Django; eth_account is imported only when a key is used.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

PASSWORD_ENV = "BCFL_KEY_PASSWORD"  # noqa: S105 - the variable's name, not a password


class KeyFileError(ValueError):
    """The key file cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class Wallet:
    address: str  # checksummed
    private_key: str  # 0x hex; keep in memory only

    def __repr__(self) -> str:  # never print the key
        return f"Wallet({self.address})"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise KeyFileError(f"{path} already exists; refusing to overwrite a key file")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def create_key_file(path: str | Path, password: str | None = None) -> Wallet:
    """A fresh random key in ``path`` (0600): keystore JSON when ``password`` is given, else plain hex."""
    from eth_account import Account

    path = Path(path).expanduser()
    account = Account.create()
    key_hex = "0x" + bytes(account.key).hex()
    if password:
        _write_private(path, json.dumps(Account.encrypt(account.key, password)))
    else:
        _write_private(path, key_hex + "\n")
    return Wallet(account.address, key_hex)


def load_wallet(path: str | Path, *, password: str | None = None, password_env: str = PASSWORD_ENV) -> Wallet:
    """The wallet in ``path`` (plain hex 0600 or keystore JSON); ``KeyFileError`` in plain words otherwise."""
    from eth_account import Account

    path = Path(str(path)).expanduser()
    if not str(path) or not path.is_file():
        raise KeyFileError(f"wallet key file {path} does not exist (create one with `keygen`)")
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise KeyFileError(f"cannot read wallet key file {path}: {exc}") from exc
    if text.startswith("{"):
        try:
            keystore = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyFileError(f"{path} looks like a keystore but is not valid JSON: {exc}") from exc
        if password is None:
            password = os.environ.get(password_env)
        if password is None:
            raise KeyFileError(f"{path} is an encrypted keystore; set its password in ${password_env}")
        try:
            key = bytes(Account.decrypt(keystore, password))
        except ValueError as exc:
            raise KeyFileError(f"cannot decrypt keystore {path}: wrong password or damaged file") from exc
    else:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"wallet key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
            )
        hexpart = text.removeprefix("0x")
        try:
            key = bytes.fromhex(hexpart)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise KeyFileError(f"{path} must hold a 32-byte private key as hex (0x + 64 hex digits)")
    account = Account.from_key(key)
    return Wallet(account.address, "0x" + key.hex())


def sign_update(
    wallet: Wallet, *, chain_id: int, registry: str, task_id: int, round: int, update_hash: str
) -> str:
    """EIP-712 ``Update(taskId, round, updateHash)`` signature, 0x hex."""
    from bcfl_core import eip712

    typed = eip712.update_typed_data(
        chain_id=chain_id, verifying_contract=registry, task_id=task_id, round=round, update_hash=update_hash
    )
    return eip712.sign_typed_data(typed, wallet.private_key)
