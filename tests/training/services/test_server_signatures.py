"""ServerApp screening of signed updates, with real eth_account signatures (no Django)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from eth_account import Account
from eth_utils import keccak
from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from bcfl_core import eip712
from tests.training.messages import train_reply
from training import zoo
from training.flower_app import server_app as sa

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ALICE = Account.from_key(keccak(text="alice"))
BOB = Account.from_key(keccak(text="bob"))
MALLORY = Account.from_key(keccak(text="mallory"))
CTX = sa.SigningContext(
    participants={1: ALICE.address, 2: BOB.address},
    chain_id=31337,
    registry_address=REGISTRY,
    chain_task_id=7,
)


@pytest.fixture
def global_record():
    return ArrayRecord(zoo.build_model("mlp", (64,), 10, hidden=8, seed=0).state_dict())


def reply(global_record, node_id, *, signer=None, bcfl="auto", tamper=False, round_=3, num_examples=10):
    arrays = [a + node_id for a in global_record.to_numpy_ndarrays()]
    record = ArrayRecord(
        dict(zip(global_record.keys(), [ArrayRecord([a])["0"] for a in arrays], strict=True))
    )
    sha = zoo.weights_hash(arrays)
    content = RecordDict(
        {"arrays": record, "metrics": MetricRecord({"num-examples": num_examples, "train-loss": 0.1})}
    )
    if bcfl == "auto":
        signed_hash = keccak(text="other").hex() if tamper else sha
        msg = eip712.update_typed_data(
            chain_id=31337,
            verifying_contract=REGISTRY,
            task_id=7,
            round=round_,
            update_hash="0x" + signed_hash,
        )
        content["bcfl"] = ConfigRecord(
            {
                "wallet": signer.address,
                "update-hash": "0x" + signed_hash,
                "signature": eip712.sign_typed_data(msg, signer.key.hex()),
            }
        )
    return train_reply(node_id, content, reply_to="i", group_id="3")


def screen(global_record, replies, round_=3):
    strategy = sa.ValidatingFedAvg(signing=CTX, min_available_nodes=1)
    strategy._global = global_record
    return strategy.screen(replies, round_)


def test_good_signature_is_accepted_with_wallet_and_signature(global_record):
    kept, accepted, rejected = screen(global_record, [reply(global_record, 1, signer=ALICE)])
    assert len(kept) == 1 and not rejected
    assert accepted[0].wallet == ALICE.address and accepted[0].signature.startswith("0x")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda g: reply(g, 1, bcfl=None), "missing signature"),
        (lambda g: reply(g, 1, signer=MALLORY), "bad signature"),
        (lambda g: reply(g, 1, signer=BOB), "bad signature"),  # another participant's key
        (lambda g: reply(g, 1, signer=ALICE, tamper=True), "update hash mismatch"),
        (lambda g: reply(g, 1, signer=ALICE, round_=2), "bad signature"),  # replayed from another round
        (lambda g: reply(g, 9, signer=ALICE), "unknown node"),
    ],
)
def test_bad_updates_are_rejected_with_reason(global_record, make, reason):
    kept, accepted, rejected = screen(
        global_record, [make(global_record), reply(global_record, 2, signer=BOB)]
    )
    assert [u.node_id for u in accepted] == [2]
    assert rejected[0].reason.startswith(reason), rejected[0].reason


def test_rejected_update_does_not_count_in_the_average(global_record, tmp_path):
    strategy = sa.ValidatingFedAvg(
        signing=CTX,
        min_available_nodes=1,
        hook=sa.JsonlRoundHook(tmp_path / "r.jsonl"),
        checkpoint_dir=tmp_path / "ck",
        round_offset=2,
    )
    strategy._global = global_record
    arrays, _ = strategy.aggregate_train(
        1, [reply(global_record, 1, signer=ALICE), reply(global_record, 2, signer=MALLORY)]
    )
    base = global_record.to_numpy_ndarrays()
    np.testing.assert_allclose(arrays.to_numpy_ndarrays()[0], base[0] + 1, rtol=1e-6)
    line = json.loads((tmp_path / "r.jsonl").read_text())
    assert line["round"] == 3  # resumed run: Flower round 1 is task round 3
    assert line["checkpoint"].endswith("round-0003.safetensors") and len(line["checkpoint_sha256"]) == 64
    by = {u["node_id"]: u for u in line["updates"]}
    assert by[1]["score"] == 1.0 and by[2]["score"] == 0.0 and by[2]["reason"].startswith("bad signature")


def test_participants_parse_and_unknown_rule_is_refused(tmp_path):
    assert sa.parse_participants(f"1:{ALICE.address.lower()},2:{BOB.address}") == {
        1: ALICE.address,
        2: BOB.address,
    }
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"5": ALICE.address}))
    ctx = sa.signing_context_from_config({"participants-path": str(path), "chain-task-id": 4})
    assert ctx.participants == {5: ALICE.address} and ctx.chain_task_id == 4
    assert sa.signing_context_from_config({}) is None
    with pytest.raises(ValueError, match="not implemented yet"):
        sa.ValidatingFedAvg(aggregation_rule="no_such_rule")


def test_checkpoint_round_trip_checks_weights_hash(tmp_path, global_record):
    keys, arrays = list(global_record.keys()), global_record.to_numpy_ndarrays()
    sa.save_safetensors(tmp_path / "c.safetensors", keys, arrays)
    loaded = sa.load_checkpoint(tmp_path / "c.safetensors", keys, zoo.weights_hash(arrays))
    assert zoo.weights_hash(loaded) == zoo.weights_hash(arrays)
    with pytest.raises(ValueError, match="weights hash"):
        sa.load_checkpoint(tmp_path / "c.safetensors", keys, "0" * 64)


def test_a_node_that_did_not_answer_is_recorded_against_that_node(global_record):
    # given: both participants were asked; the SuperLink answers for BOB's node (gone) with an error reply
    from flwr.app import Error

    strategy = sa.ValidatingFedAvg(signing=CTX, min_available_nodes=1)
    strategy._global = global_record
    strategy._train_sampled = [1, 2]
    gone = train_reply(
        sa.SUPERLINK_NODE_ID,
        error=Error(code=3, reason="Node unavailable"),
        dst_node_id=sa.SUPERLINK_NODE_ID,
        message_id="",
        reply_to="i2",
        group_id="3",
    )
    # when
    kept, accepted, rejected = strategy.screen([reply(global_record, 1, signer=ALICE), gone], 3)
    # then: ALICE counts; BOB's node gets one rejected record with the reason, nothing for the SuperLink itself
    assert [u.node_id for u in accepted] == [1]
    assert [(u.node_id, u.wallet, u.reason) for u in rejected] == [
        (2, BOB.address, "no reply: Node unavailable")
    ]


@pytest.mark.parametrize(("needed", "raises"), [(2, True), (1, False)])
def test_a_round_with_fewer_answers_than_the_task_needs_does_not_count(
    global_record, tmp_path, needed, raises
):
    # given: both participants were asked, BOB's node is gone; the task needs `needed` answers
    from flwr.app import Error

    hook = sa.JsonlRoundHook(tmp_path / "rounds.jsonl")
    strategy = sa.ValidatingFedAvg(signing=CTX, min_available_nodes=1, min_train_nodes=needed, hook=hook)
    strategy._global = global_record
    strategy._train_sampled = [1, 2]
    gone = train_reply(
        sa.SUPERLINK_NODE_ID,
        error=Error(3, "Node unavailable"),
        dst_node_id=sa.SUPERLINK_NODE_ID,
        message_id="",
        reply_to="i2",
        group_id="3",
    )
    replies = [reply(global_record, 1, signer=ALICE), gone]
    if raises:
        # then: the round is not recorded; the error names who did not answer
        with pytest.raises(
            sa.TooFewRepliesError,
            match=rf"only 1 participant\(s\) answered, the task needs 2 \({BOB.address}: no reply: Node unavailable\)",
        ):
            strategy.aggregate_train(3, replies)
        assert not (tmp_path / "rounds.jsonl").exists()
    else:
        strategy.aggregate_train(3, replies)
        assert len((tmp_path / "rounds.jsonl").read_text().splitlines()) == 1


def test_a_rejected_update_still_counts_as_an_answer(global_record):
    # a participant who answered with a bad update is present: rejected, but the round goes on
    strategy = sa.ValidatingFedAvg(signing=CTX, min_available_nodes=1, min_train_nodes=2)
    strategy._global = global_record
    strategy._train_sampled = [1, 2]
    arrays, _ = strategy.aggregate_train(
        3, [reply(global_record, 1, signer=ALICE), reply(global_record, 2, signer=MALLORY)]
    )
    assert arrays is not None


def test_serverapp_failure_reason_is_left_for_the_platform(tmp_path):
    sa.write_error(tmp_path / "run" / "error.txt", sa.TooFewRepliesError("round 4: only 2 answered"))
    assert (tmp_path / "run" / "error.txt").read_text() == "round 4: only 2 answered"
    sa.write_error("", RuntimeError("x"))  # no path: nothing to write


def test_num_examples_above_the_committed_data_is_refused(global_record):
    """FedAvg weights by num-examples: a claim above the data size committed when joining is refused with a
    reason (here 10^9 against 40), while a claim within it counts."""
    # given node 1 (Alice) joined with 40 examples, node 2 (Bob) with 10
    ctx = sa.SigningContext(**{**CTX.__dict__, "max_examples": {1: 40, 2: 10}})
    strategy = sa.ValidatingFedAvg(signing=ctx, min_available_nodes=1)
    strategy._global = global_record
    # when
    kept, accepted, rejected = strategy.screen(
        [
            reply(global_record, 1, signer=ALICE, num_examples=10**9),
            reply(global_record, 2, signer=BOB, num_examples=10),
        ],
        3,
    )
    # then
    assert [u.node_id for u in accepted] == [2]
    assert rejected[0].node_id == 1 and rejected[0].wallet == ALICE.address
    assert (
        rejected[0].reason
        == "num-examples above the committed data: claims 1000000000 examples, committed 40 when joining"
    )


def test_example_caps_are_read_from_the_run_config(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"5": ALICE.address}))
    (tmp_path / "caps.json").write_text(json.dumps({"5": 123}))
    ctx = sa.signing_context_from_config(
        {"participants-path": str(tmp_path / "p.json"), "example-caps-path": str(tmp_path / "caps.json")}
    )
    assert ctx.max_examples == {5: 123}


def test_a_banned_participant_is_not_sampled_and_its_reply_is_refused(global_record, tmp_path):
    # given: Alice's node 1 was banned during training (the platform wrote the file)
    banned = tmp_path / "banned.json"
    banned.write_text("[1]")
    ctx = sa.SigningContext(**{**CTX.__dict__, "banned_path": str(banned)})
    strategy = sa.ValidatingFedAvg(signing=ctx, min_available_nodes=1, min_train_nodes=1)
    strategy._global = global_record

    class Grid:
        def get_node_ids(self):
            return [1, 2]

    # then: only Bob's node is sampled, and a reply Alice still sends is refused and attributed to her
    assert strategy._sample(Grid(), 1.0, 1) == [2]
    kept, accepted, rejected = strategy.screen(
        [reply(global_record, 1, signer=ALICE), reply(global_record, 2, signer=BOB)], 3
    )
    assert [u.node_id for u in accepted] == [2]
    assert rejected[0].wallet == ALICE.address and rejected[0].reason.startswith("banned:")
    # and: without the file nobody is banned
    banned.unlink()
    assert ctx.banned() == set()
