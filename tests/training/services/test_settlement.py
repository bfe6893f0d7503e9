"""Settlement of the escrow: a completed task's NFT mint + finalize (stakes root, reward to the stake pool),
a failed task's pro-rata payout and refund, the model card, the token metadata, and the payout beat jobs."""

from __future__ import annotations

import pytest

from bcfl_core import merkle
from contracts.models import ChainTx
from tasks.models import Task
from tasks.services import task_transition
from tests.training.factories import RoundFactory, RunFactory, UpdateFactory, checkpoint_file
from tests.training.services.conftest import TaskFactory, account, chain_knows, participate
from training import services
from training.models import Contribution, Finalization, FinalModel, StakeAllocation
from training.services import payouts, settlement

pytestmark = pytest.mark.django_db
S = Task.Status


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(
        services.common, "enqueue", lambda name, *args, countdown=None: calls.append((name, *args))
    )
    return calls


def _trained(tmp_path, chain, *, status, rounds=2, committed=2, scores=((0.25, 0.75, 0.0), (0.5, 0.25, 0.0))):
    """A task with `rounds` stored rounds (the first `committed` of them committed on chain: the fake chain
    knows it) and three participants; the third's updates are flagged in every round (judged malicious)."""
    task = TaskFactory(rounds=rounds, status=status, max_participants=3, creator_share_bps=1000)
    chain_knows(chain, task, committed=committed)
    parts = [participate(task, account(i)) for i in range(3)]
    run = RunFactory(task=task)
    flag = {"signal": "opposed", "value": -0.9, "threshold": 0.0, "counts": True, "detail": ""}
    for number, row in enumerate(scores, start=1):
        path, sha, weights = checkpoint_file(tmp_path / f"round-{number}.safetensors", number)
        commit = ChainTx.objects.create(
            idempotency_key=f"commit-round:{task.pk}:{number}",
            chain_id=task.chain_id,
            contract_name="TaskRegistry",
            function="commitRound",
            status=ChainTx.Status.CONFIRMED if number <= committed else ChainTx.Status.FAILED,
            tx_hash="0x" + f"{number:064x}",
        )
        rnd = RoundFactory(
            task=task,
            run=run,
            number=number,
            checkpoint_path=path,
            checkpoint_sha256=sha,
            global_sha256=weights,
            accuracy=0.5 + number / 10,
            loss=1.0 / number,
            commit_tx=commit,
        )
        for i, score in enumerate(row):
            UpdateFactory(
                round=rnd,
                participation=parts[i],
                node_id=str(10 + i),
                score=score,
                accepted=True,
                flags=[flag] if i == 2 else [],
            )
    return task, parts


def _proofs_verify(task):
    root = bytes.fromhex(Finalization.objects.get(task=task).stakes_root[2:])
    allocs = list(StakeAllocation.objects.filter(task=task))
    assert sum(a.shares for a in allocs) == 10_000
    for a in allocs:
        leaf = merkle.stake_leaf_hash(a.holder, a.shares)
        assert merkle.verify([bytes.fromhex(p[2:]) for p in a.proof], root, leaf)
    return {a.holder.lower(): a.shares for a in allocs}


def test_completed_task_mints_the_nft_and_moves_the_reward_under_the_stakes_root(tmp_path, chain_inline):
    task, parts = _trained(tmp_path, chain_inline, status=S.FINALIZING)
    # when
    assert services.task_finalize(task_id=task.pk) == "completed"
    # then: stakes: creator 10%, honest participants by contribution, the malicious one no leaf
    shares = _proofs_verify(task)
    assert shares[task.creator.username.lower()] == 1000
    assert parts[2].wallet.lower() not in shares
    assert shares[parts[0].wallet.lower()] + shares[parts[1].wallet.lower()] == 9000
    assert Contribution.objects.get(participation=parts[2]).malicious
    # and: one mint and one finalize on chain, with the agreed arguments
    final = FinalModel.objects.get(task=task)
    fin = Finalization.objects.get(task=task)
    mint = ChainTx.objects.get(idempotency_key=f"nft-mint:{task.chain_id}:{task.chain_task_id}")
    done = ChainTx.objects.get(idempotency_key=f"task-finalize:{task.chain_id}:{task.chain_task_id}")
    assert mint.status == done.status == ChainTx.Status.CONFIRMED
    assert mint.args[1:3] == [task.chain_task_id, "0x" + final.sha256] and mint.args[4] == 500
    assert mint.args[0].lower() == task.creator.username.lower()
    assert done.args == [task.chain_task_id, "0x" + final.sha256, fin.stakes_root]
    assert fin.settlement == "finalize" and fin.settled_tx_hash == done.tx_hash
    assert int(fin.paid_to_stakes_wei) == int(task.reward_wei) and int(fin.refunded_wei) == 0
    # and: the model card, Hugging Face layout
    card = final.card.read().decode()
    assert card.startswith("---\nlicense: other\n") and "model-index:" in card
    assert "## Training rounds" in card and "| 2 | 70.00% |" in card and fin.stakes_root in card
    assert mint.tx_hash in card and done.tx_hash in card  # written once both are mined
    task.refresh_from_db()
    assert task.status == S.COMPLETED and f"Model NFT #{task.chain_task_id} minted" in task.status_note
    # and: running everything again sends nothing twice
    for _, step in services.finalize.FINALIZE_STEPS[:-1]:
        step(task=task)
    assert ChainTx.objects.filter(function__in=["mint", "finalize"]).count() == 2


def test_finalize_waits_for_the_chain_without_counting_a_failure(tmp_path, fake_chain):
    task, _ = _trained(tmp_path, fake_chain, status=S.FINALIZING)
    # the chain worker has not sent the rows yet (no worker in this test)
    assert services.task_finalize(task_id=task.pk) == "waiting"
    fin = Finalization.objects.get(task=task)
    assert fin.attempts == 0 and fin.steps_done[-1] == "chain_send"
    assert Task.objects.get(pk=task.pk).status == S.FINALIZING


def test_a_reverted_mint_fails_the_task_with_the_reason(tmp_path, chain_inline):
    task, _ = _trained(tmp_path, chain_inline, status=S.FINALIZING)
    chain_inline.revert_next("ModelNFTAlreadyMinted")
    assert services.task_finalize(task_id=task.pk) == "failed"
    task.refresh_from_db()
    assert "chain_confirm" in task.status_note and "the NFT mint failed on chain" in task.status_note


def _fail_handler(call):
    task = call.args
    return [
        (
            "TaskFailed",
            {
                "taskId": task["taskId"],
                "roundsCommitted": 1,
                "stakesRoot": task["stakesRoot"],
                "paidToStakes": 5 * 10**17,
                "refunded": 5 * 10**17,
            },
        )
    ]


def test_failed_task_after_one_of_two_rounds_pays_contributors_of_that_round(
    tmp_path, chain_inline, enqueued
):
    task, parts = _trained(
        tmp_path, chain_inline, status=S.TRAINING, committed=1, scores=((0.2, 0.6, 0.0), (0.9, 0.0, 0.0))
    )
    # when: the task fails: the settle job is enqueued with the failure
    task_transition(task=task, to=S.FAILED, note="boom")
    assert ("task_settle_failed", task.pk) in enqueued
    assert settlement.task_settle_failed(task_id=task.pk) == "sent"
    # then: shares from round 1 only (participant 1 gave 3x participant 0), the flagged one excluded
    shares = _proofs_verify(task)
    assert shares[parts[1].wallet.lower()] == 3 * shares[parts[0].wallet.lower()] == 6750
    tx = ChainTx.objects.get(idempotency_key=f"task-fail:{task.chain_id}:{task.chain_task_id}")
    assert tx.args == [task.chain_task_id, Finalization.objects.get(task=task).stakes_root]
    # and: once mined, the split is recorded from the TaskFailed event
    assert settlement.task_settle_failed(task_id=task.pk) == "settled"
    fin = Finalization.objects.get(task=task)
    assert (fin.settlement, fin.rounds_paid, int(fin.paid_to_stakes_wei), int(fin.refunded_wei)) == (
        "fail",
        1,
        5 * 10**17,
        5 * 10**17,
    )
    assert settlement.task_settle_failed(task_id=task.pk) == "settled"
    assert ChainTx.objects.filter(function="fail").count() == 1


def test_failed_before_any_committed_round_refunds_everything_with_a_zero_root(tmp_path, chain_inline):
    task, _ = _trained(tmp_path, chain_inline, status=S.TRAINING, committed=0)
    task_transition(task=task, to=S.FAILED, note="boom")
    assert settlement.task_settle_failed(task_id=task.pk) == "sent"
    tx = ChainTx.objects.get(function="fail")
    assert tx.args == [task.chain_task_id, "0x" + "00" * 32]
    assert not StakeAllocation.objects.filter(task=task).exists()


def test_settlement_watchdog_covers_failed_unsettled_tasks(tmp_path, chain_inline, enqueued):
    task, _ = _trained(tmp_path, chain_inline, status=S.TRAINING, committed=0)
    task_transition(task=task, to=S.FAILED, note="boom")
    assert settlement.settlement_watchdog() == [task.pk]


def test_token_metadata_only_for_minted_tokens(tmp_path, chain_inline, client):
    task, _ = _trained(tmp_path, chain_inline, status=S.FINALIZING)
    token = task.chain_task_id
    assert client.get(f"/api/nft/{token}").status_code == 404
    services.task_finalize(task_id=task.pk)
    meta = client.get(f"/api/nft/{token}").json()
    assert set(meta) >= {"name", "description", "image", "external_url", "attributes"}
    assert meta["image"].endswith(f"/api/nft/{token}/image.svg") and meta["external_url"].endswith(
        f"/tasks/{task.pk}/"
    )
    traits = {a["trait_type"]: a["value"] for a in meta["attributes"]}
    assert traits["Accuracy"] == 70.0 and traits["Rounds"] == 2 and traits["Judged malicious"] == 1
    image = client.get(meta["image"].split("testserver")[-1])
    assert image["Content-Type"] == "image/svg+xml" and b"<polyline" in image.content
    assert client.get("/api/nft/contract.json").json()["name"] == "BCFL models"
    hex_id = f"{token:064x}"
    assert client.get(f"/api/stake/{hex_id}.json").json()["decimals"] == 0
    assert client.get(f"/api/stake/0x{hex_id[2:]}.json").status_code == 404  # EIP-1155: no 0x
    assert client.get(f"/api/stake/{hex_id[1:]}.json").status_code == 404  # exactly 64 digits
    assert client.get(f"/api/stake/{token + 1:064x}.json").status_code == 404  # no such stake


def test_beat_claims_shares_in_batches_and_pushes_profits_above_the_threshold(
    tmp_path, chain_inline, monkeypatch
):
    task, _ = _trained(tmp_path, chain_inline, status=S.FINALIZING)
    services.task_finalize(task_id=task.pk)
    monkeypatch.setattr(payouts, "chain_tx_enqueue", settlement.chain_tx_enqueue)  # mined in-process
    holders = StakeAllocation.objects.filter(task=task).count()
    assert payouts.stakes_claim_pending(batch=2) == {task.pk: holders}
    assert ChainTx.objects.filter(function="claimSharesBatch").count() == (holders + 1) // 2
    assert payouts.stakes_claim_pending(batch=2) == {}  # claimed: nothing sent again
    assert not StakeAllocation.objects.filter(task=task, claimed_tx_hash="").exists()
    claimable = {h.lower(): 0 for h in StakeAllocation.objects.values_list("holder", flat=True)}
    first = next(iter(claimable))
    claimable[first] = 10**15
    chain_inline.reads[("StakeToken", "claimable")] = lambda stake_id, holder: claimable[holder.lower()]
    chain_inline.reads[("StakeToken", "totalDeposited")] = 7 * 10**15
    assert payouts.distribute_profits() == {task.pk: 1}
    push = ChainTx.objects.get(function="pushPayouts")
    assert push.args == [
        task.chain_task_id,
        [next(h for h in StakeAllocation.objects.values_list("holder", flat=True) if h.lower() == first)],
    ]
    payouts.distribute_profits()  # same deposits: the same ledger key, nothing new
    assert ChainTx.objects.filter(function="pushPayouts").count() == 1


def test_a_finalize_chain_that_died_after_sending_resumes_without_a_second_mint(tmp_path, fake_chain):
    from contracts.services import chain_tx_process
    from training.services import finalize

    task, _ = _trained(tmp_path, fake_chain, status=S.FINALIZING)
    # given: a chain that recorded the mint and finalize, then died with its worker before they were sent
    assert services.task_finalize(task_id=task.pk, token="dead") == "waiting"
    Finalization.objects.filter(task=task).update(follower_until=None)  # its lease is gone
    # when: the chain worker sends the rows (twice: a redelivered job), a new chain resumes, a step reruns
    for tx in ChainTx.objects.filter(function__in=["mint", "finalize"]):
        chain_tx_process(tx_id=tx.pk)
        chain_tx_process(tx_id=tx.pk)
    assert services.task_finalize(task_id=task.pk, token="new") == "completed"
    dict(finalize.FINALIZE_STEPS)["chain_send"](task=task)
    # then: one NFT, one settlement, two transactions in all
    emitted = [e["event"] for e in fake_chain.events]
    assert emitted.count("ModelMinted") == 1 and emitted.count("TaskFinalized") == 1
    assert list(fake_chain.nfts) == [task.chain_task_id] and len(fake_chain.receipts) == 2
    assert ChainTx.objects.filter(function__in=["mint", "finalize"]).count() == 2


def test_a_task_failed_after_its_finalize_was_mined_records_that_settlement(tmp_path, chain_inline):
    task, _ = _trained(tmp_path, chain_inline, status=S.FINALIZING)
    chain_inline.revert_next("ModelNFTZeroModelHash")  # the mint (sent first) reverts, finalize is mined
    assert services.task_finalize(task_id=task.pk) == "failed"
    assert settlement.task_settle_failed(task_id=task.pk) == "settled"
    fin = Finalization.objects.get(task=task)
    assert fin.settlement == "finalize" and int(fin.paid_to_stakes_wei) == int(task.reward_wei)
    assert not ChainTx.objects.filter(function="fail").exists()
