"""Wallet key files: plain hex (0600 enforced) and keystore JSON."""

import json
import os

import pytest
from eth_account import Account

from training.client.wallet import KeyFileError, create_key_file, load_wallet


def test_plain_key_roundtrip(tmp_path):
    w = create_key_file(tmp_path / "k")
    assert os.stat(tmp_path / "k").st_mode & 0o777 == 0o600
    assert load_wallet(tmp_path / "k") == w
    assert w.private_key not in repr(w)


def test_plain_key_readable_by_others_is_refused(tmp_path):
    create_key_file(tmp_path / "k")
    os.chmod(tmp_path / "k", 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_wallet(tmp_path / "k")


def test_refuses_overwrite_and_missing(tmp_path):
    create_key_file(tmp_path / "k")
    with pytest.raises(KeyFileError, match="already exists"):
        create_key_file(tmp_path / "k")
    with pytest.raises(KeyFileError, match="does not exist"):
        load_wallet(tmp_path / "missing")


def test_keystore(tmp_path, monkeypatch):
    acct = Account.create()
    ks = Account.encrypt(acct.key, "pw", kdf="pbkdf2", iterations=1000)
    (tmp_path / "ks.json").write_text(json.dumps(ks))
    monkeypatch.delenv("BCFL_KEY_PASSWORD", raising=False)
    with pytest.raises(KeyFileError, match="BCFL_KEY_PASSWORD"):
        load_wallet(tmp_path / "ks.json")
    monkeypatch.setenv("MY_PW", "pw")
    assert load_wallet(tmp_path / "ks.json", password_env="MY_PW").address == acct.address
    monkeypatch.setenv("BCFL_KEY_PASSWORD", "wrong")
    with pytest.raises(KeyFileError, match="wrong password"):
        load_wallet(tmp_path / "ks.json")
