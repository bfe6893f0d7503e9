"""The platform signer: one key signs every platform transaction.

Sources, in order: `CHAIN_SIGNER_KEY` (hex), `CHAIN_KEYSTORE_FILE` + `CHAIN_KEYSTORE_PASSWORD`
(an encrypted JSON keystore, `eth_account.Account.decrypt`), and, only on anvil's chain id 31337,
anvil's dev key #0. Any of anvil's ten public dev keys is refused on every other chain id.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from eth_account import Account

from contracts.devkeys import ANVIL_CHAIN_ID, ANVIL_DEV_KEYS  # noqa: E402,F401 - re-exported


@dataclass(frozen=True)
class Signer:
    address: str
    private_key: str  # 0x-prefixed hex
    source: str  # "key", "keystore" or "anvil-dev"

    def __repr__(self) -> str:  # never print the key
        return f"Signer(address={self.address!r}, source={self.source!r})"


def _normalise(key: str) -> str:
    key = key.strip().lower()
    return key if key.startswith("0x") else "0x" + key


def _from_keystore(path: str, password: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise ImproperlyConfigured(f"CHAIN_KEYSTORE_FILE={path!r} does not exist.")
    try:
        keyfile = json.loads(file.read_text())
        return "0x" + bytes(Account.decrypt(keyfile, password)).hex()
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"Could not decrypt CHAIN_KEYSTORE_FILE={path!r}: {exc} (check CHAIN_KEYSTORE_PASSWORD)."
        ) from exc


def load_signer(
    *,
    chain_id: int | None = None,
    key: str | None = None,
    keystore_file: str | None = None,
    keystore_password: str | None = None,
) -> Signer:
    """Resolve the platform signer from settings (arguments override settings, for tests)."""
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    key = settings.CHAIN_SIGNER_KEY if key is None else key
    keystore_file = settings.CHAIN_KEYSTORE_FILE if keystore_file is None else keystore_file
    keystore_password = settings.CHAIN_KEYSTORE_PASSWORD if keystore_password is None else keystore_password

    if key:
        private_key, source = _normalise(key), "key"
    elif keystore_file:
        private_key, source = _from_keystore(keystore_file, keystore_password), "keystore"
    elif chain_id == ANVIL_CHAIN_ID:
        private_key, source = ANVIL_DEV_KEYS[0], "anvil-dev"
    else:
        raise ImproperlyConfigured(
            f"No platform signer for chain id {chain_id}: set CHAIN_SIGNER_KEY or CHAIN_KEYSTORE_FILE "
            "(+ CHAIN_KEYSTORE_PASSWORD). The anvil dev key is only used on chain id 31337."
        )
    if private_key in ANVIL_DEV_KEYS and chain_id != ANVIL_CHAIN_ID:
        raise ImproperlyConfigured(
            f"Refusing anvil's public dev key #{ANVIL_DEV_KEYS.index(private_key)} on chain id {chain_id}: "
            "anyone can sign with it. Dev keys are only allowed on anvil (chain id 31337)."
        )
    try:
        account = Account.from_key(private_key)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"The {source} signer key is not a valid private key.") from exc
    return Signer(address=account.address, private_key=private_key, source=source)


@functools.lru_cache(maxsize=8)
def _cached(chain_id: int, key: str, keystore_file: str, keystore_password: str) -> Signer:
    return load_signer(
        chain_id=chain_id, key=key, keystore_file=keystore_file, keystore_password=keystore_password
    )


def get_signer() -> Signer:
    """The platform signer for the current settings (cached; keystore decryption is slow on purpose)."""
    return _cached(
        settings.CHAIN_ID,
        settings.CHAIN_SIGNER_KEY,
        settings.CHAIN_KEYSTORE_FILE,
        settings.CHAIN_KEYSTORE_PASSWORD,
    )
