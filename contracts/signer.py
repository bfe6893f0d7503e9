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

ANVIL_CHAIN_ID = 31337
# anvil's well-known dev accounts (mnemonic "test test ... junk"). They are public: never on a real chain.
ANVIL_DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


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
