"""tasks/eip712.py is pure: sign/recover round trips and tamper detection."""

import pytest

from bcfl_core import eip712
from tests.tasks.factories import REGISTRY, wallet


def test_join_roundtrip_and_tamper():
    # given
    acct = wallet(1)
    msg = eip712.join_typed_data(
        chain_id=31337,
        verifying_contract=REGISTRY,
        task_id=7,
        participant=acct.address,
        node_public_key="key",
        data_summary={"n": 1},
    )
    sig = eip712.sign_typed_data(msg, acct.key.hex())
    # then
    assert eip712.recover_signer(msg, sig) == acct.address
    tampered = eip712.join_typed_data(
        chain_id=31337,
        verifying_contract=REGISTRY,
        task_id=8,
        participant=acct.address,
        node_public_key="key",
        data_summary={"n": 1},
    )
    assert eip712.recover_signer(tampered, sig) != acct.address


def test_summary_hash_is_canonical():
    assert eip712.data_summary_hash({"b": 1, "a": [1, 2]}) == eip712.data_summary_hash({"a": [1, 2], "b": 1})


def test_bad_signature_raises():
    msg = eip712.credential_typed_data(
        chain_id=1, subject=wallet(1).address, nullifier="0x" + "11" * 32, expires_at=1
    )
    with pytest.raises(eip712.SignatureError):
        eip712.recover_signer(msg, "0x1234")


def test_update_signature_round_trip_and_tamper():
    from eth_account import Account

    from bcfl_core.eip712 import recover_signer, sign_typed_data, update_typed_data

    acct = Account.create()
    registry = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    msg = update_typed_data(
        chain_id=31337, verifying_contract=registry, task_id=1, round=2, update_hash="ab" * 32
    )
    sig = sign_typed_data(msg, acct.key)
    assert recover_signer(msg, sig) == acct.address
    other = update_typed_data(
        chain_id=31337, verifying_contract=registry, task_id=1, round=3, update_hash="ab" * 32
    )
    assert recover_signer(other, sig) != acct.address
