"""Signer sources and the dev-key guard; web3 is imported by the contracts/chain/ gateway only."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from eth_account import Account

from contracts.signer import ANVIL_DEV_KEYS, load_signer
from tests.anvil import DEV_KEYS

ROOT = Path(__file__).resolve().parents[2]


def test_dev_key_list_matches_tests_anvil():
    assert list(ANVIL_DEV_KEYS) == DEV_KEYS


def test_default_is_dev_key_0_on_anvil_only():
    assert load_signer(chain_id=31337, key="", keystore_file="").source == "anvil-dev"
    with pytest.raises(ImproperlyConfigured, match="No platform signer for chain id 80002"):
        load_signer(chain_id=80002, key="", keystore_file="")


@pytest.mark.parametrize("index", range(10))
def test_any_dev_key_is_refused_off_anvil(index):
    with pytest.raises(ImproperlyConfigured, match="Refusing anvil's public dev key"):
        load_signer(chain_id=80002, key=DEV_KEYS[index].removeprefix("0x").upper(), keystore_file="")


def test_explicit_key_on_anvil_is_fine():
    assert load_signer(chain_id=31337, key=DEV_KEYS[2]).address == Account.from_key(DEV_KEYS[2]).address


def test_keystore_file_works_and_bad_password_is_explained(tmp_path):
    # given
    account = Account.create()
    keystore = Account.encrypt(account.key, "s3cret", kdf="pbkdf2", iterations=1000)
    path = tmp_path / "signer.json"
    path.write_text(json.dumps(keystore))
    # when
    signer = load_signer(chain_id=80002, key="", keystore_file=str(path), keystore_password="s3cret")
    # then
    assert signer.address == account.address and signer.source == "keystore"
    assert account.key.hex().removeprefix("0x") not in repr(signer)
    with pytest.raises(ImproperlyConfigured, match="Could not decrypt"):
        load_signer(chain_id=80002, key="", keystore_file=str(path), keystore_password="wrong")
    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        load_signer(chain_id=80002, key="", keystore_file=str(tmp_path / "nope.json"))


def test_keystore_holding_a_dev_key_is_refused_off_anvil(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(Account.encrypt(DEV_KEYS[0], "pw", kdf="pbkdf2", iterations=1000)))
    with pytest.raises(ImproperlyConfigured, match="Refusing"):
        load_signer(chain_id=1, key="", keystore_file=str(path), keystore_password="pw")


_WEB3_IMPORT = re.compile(r"^\s*(import\s+web3\b|from\s+web3\b)", re.MULTILINE)
_EXCLUDED = {"tests", "benchmarks", "var"}  # top-level folders
_SKIP_ANYWHERE = {".venv", "node_modules", ".git", "__pycache__"}


def test_only_contracts_chain_imports_web3():
    offenders = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        at_root = Path(dirpath) == ROOT
        dirnames[:] = [d for d in dirnames if d not in _SKIP_ANYWHERE and not (at_root and d in _EXCLUDED)]
        for filename in filenames:
            if not filename.endswith(".py"):
                continue
            path = Path(dirpath) / filename
            rel = path.relative_to(ROOT).as_posix()
            in_gateway = rel.startswith("contracts/chain/")
            if not in_gateway and _WEB3_IMPORT.search(path.read_text(errors="replace")):
                offenders.append(rel)
    assert offenders == [], f"only contracts/chain/ may import web3; also found in: {offenders}"
    assert _WEB3_IMPORT.search((ROOT / "contracts" / "chain" / "connection.py").read_text())


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["deployment", "chaintx", "eventcursor", "chainevent", "signerlock"])
def test_admin_changelists_render(admin_client, model):
    from django.urls import reverse

    assert admin_client.get(reverse(f"admin:contracts_{model}_changelist")).status_code == 200
