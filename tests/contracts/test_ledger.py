"""The ledger against a real anvil: idempotency, crash safety, reverts, transient errors, reconcile."""

from __future__ import annotations

import pytest

from contracts import chain
from contracts.chain import ETH_TRANSFER, ChainUnavailable
from contracts.models import ChainTx
from contracts.services import (
    chain_tx_create,
    chain_tx_enqueue,
    chain_tx_process,
    chain_tx_reconcile_pending,
)
from tests.anvil import Anvil, free_port
from tests.contracts.conftest import point_at

RECIPIENT = "0x" + "33" * 20
pytestmark = pytest.mark.django_db(transaction=True)


def _transfer(key: str, wei: int = 1) -> ChainTx:
    tx, _ = chain_tx_create(key=key, contract_name="", function=ETH_TRANSFER, args=[RECIPIENT], value_wei=wei)
    return tx


def test_enqueue_is_idempotent_and_enqueues_after_commit(db, monkeypatch, django_capture_on_commit_callbacks):
    # given
    sent: list[int] = []
    monkeypatch.setattr("contracts.services.chain_tx_send_later", lambda tx_id: sent.append(tx_id))
    # when
    with django_capture_on_commit_callbacks(execute=True):
        first = chain_tx_enqueue(key="k-1", contract_name="", function=ETH_TRANSFER, args=[RECIPIENT])
        again = chain_tx_enqueue(key="k-1", contract_name="", function=ETH_TRANSFER, args=[RECIPIENT])
    ChainTx.objects.filter(pk=first.pk).update(status=ChainTx.Status.CONFIRMED)
    with django_capture_on_commit_callbacks(execute=True):
        final = chain_tx_enqueue(key="k-1", contract_name="", function=ETH_TRANSFER, args=[RECIPIENT])
    # then
    assert first.pk == again.pk == final.pk
    assert ChainTx.objects.count() == 1
    assert sent == [first.pk, first.pk]  # not-final row: re-enqueued; final row: nothing


def test_worker_killed_between_sign_and_broadcast_resends_same_hash(chain_settings, monkeypatch):
    # given: a worker that dies right after the signed row is committed
    tx = _transfer("crash-1")
    real_broadcast = chain.broadcast

    def die(*_args, **_kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(chain, "broadcast", die)
    sender_nonce_before = None
    with pytest.raises(SystemExit):
        chain_tx_process(tx_id=tx.id)
    signed = ChainTx.objects.get(pk=tx.pk)
    assert signed.status == ChainTx.Status.SIGNED and signed.tx_hash and signed.raw_tx
    sender_nonce_before = chain.pending_nonce(signed.sender)
    assert not chain.transaction_known(signed.tx_hash)
    # when: the job is retried
    monkeypatch.setattr(chain, "broadcast", real_broadcast)
    done = chain_tx_process(tx_id=tx.id)
    # then: same hash, signed once, nonce used once
    assert done.status == ChainTx.Status.CONFIRMED
    assert (done.tx_hash, done.raw_tx, done.nonce) == (signed.tx_hash, signed.raw_tx, signed.nonce)
    assert done.attempts == 1
    assert chain.pending_nonce(done.sender) == sender_nonce_before + 1 == done.nonce + 1
    # and a third run is a no-op
    assert chain_tx_process(tx_id=tx.id).status == ChainTx.Status.CONFIRMED


def test_retry_of_sent_row_reads_receipt_without_resigning(chain_settings, monkeypatch):
    # given: broadcast happened, but the worker died while waiting for the receipt
    tx = _transfer("crash-2")
    monkeypatch.setattr(chain, "wait_for_receipt", lambda *a, **k: (_ for _ in ()).throw(SystemExit()))
    with pytest.raises(SystemExit):
        chain_tx_process(tx_id=tx.id)
    sent = ChainTx.objects.get(pk=tx.pk)
    assert sent.status == ChainTx.Status.SENT
    monkeypatch.undo()
    # when
    calls = []
    monkeypatch.setattr(chain, "sign", lambda *a: calls.append(a))
    done = chain_tx_process(tx_id=tx.id)
    # then
    assert done.status == ChainTx.Status.CONFIRMED and done.tx_hash == sent.tx_hash and calls == []
    assert done.gas_used == 21000 and done.block_number and done.effective_gas_price and done.confirmed_at


def test_revert_is_failed_with_decoded_custom_error_and_not_retried(deployed, monkeypatch):
    from contracts.jobs import chain_tx_send

    # given: lifting a ban that does not exist reverts with IdentityRegistryNotBanned(identity)
    identity = "0x" + "11" * 32
    tx, _ = chain_tx_create(
        key="lift-1", contract_name="IdentityRegistry", function="lift", args=[identity, "0x" + "22" * 32]
    )
    signer_nonce = chain.pending_nonce(chain.get_w3().eth.accounts[0])
    calls = []
    real = chain_tx_process
    monkeypatch.setattr("contracts.services.chain_tx_process", lambda **kw: calls.append(kw) or real(**kw))
    # when: run through the Celery job (eagerly)
    result = chain_tx_send.apply(args=[tx.id])
    # then
    assert result.successful() and result.result == "failed"
    assert len(calls) == 1  # no retry
    row = ChainTx.objects.get(pk=tx.pk)
    assert row.status == ChainTx.Status.FAILED
    assert row.error_name == "IdentityRegistryNotBanned"
    assert identity in row.error
    assert row.nonce is None and row.raw_tx == ""  # nothing signed, no nonce consumed
    assert chain.pending_nonce(chain.get_w3().eth.accounts[0]) == signer_nonce


def test_connection_error_raises_chain_unavailable_and_leaves_row_retryable(chain_settings, anvil):
    # given: an RPC URL on a closed port
    tx = _transfer("down-1")
    point_at(chain_settings, f"http://127.0.0.1:{free_port()}")
    # when / then
    with pytest.raises(ChainUnavailable):
        chain_tx_process(tx_id=tx.id)
    row = ChainTx.objects.get(pk=tx.pk)
    assert row.status == ChainTx.Status.QUEUED and row.nonce is None and row.tx_hash == ""
    # and once the node is back, the same row goes through
    point_at(chain_settings, anvil.url)
    assert chain_tx_process(tx_id=tx.id).status == ChainTx.Status.CONFIRMED


def test_celery_job_retries_chain_unavailable():
    from contracts.jobs import chain_tx_send

    assert ChainUnavailable in chain_tx_send.autoretry_for
    assert chain.ChainRevert not in chain_tx_send.autoretry_for
    assert chain_tx_send.max_retries == 8 and chain_tx_send.acks_late


def test_services_enqueue_the_send_job_by_name_on_the_chain_queue(monkeypatch):
    # given: the job as Celery registers it, and a broker stand-in
    from celery import current_app

    from contracts import services
    from contracts.jobs import chain_tx_send

    sent = []
    app = current_app._get_current_object()
    monkeypatch.setattr(app, "send_task", lambda name, args: sent.append((name, args)))
    # when
    services.chain_tx_send_later(7)
    # then: the name the services use is the job's, and it is routed to the single-worker `chain` queue
    assert sent == [(chain_tx_send.name, [7])] and services.SEND_JOB == chain_tx_send.name
    assert app.amqp.router.route({}, services.SEND_JOB)["queue"].name == "chain"


def test_chain_status_reports_instead_of_raising(chain_settings):
    assert chain.chain_status()["connected"] is True
    point_at(chain_settings, f"http://127.0.0.1:{free_port()}")
    status = chain.chain_status()
    assert status["connected"] is False and status["error"]


@pytest.mark.anvil
def test_chain_restart_with_pending_tx_is_reconciled(settings, tmp_path):
    # given: a node with persisted state and no automine; our tx is sent but not mined
    node = Anvil(state_path=tmp_path / "state.json").start()
    try:
        point_at(settings, node.url)
        node.mine(1)
        node.set_automine(False)
        tx = _transfer("restart-1", wei=10**15)
        with pytest.raises(ChainUnavailable):  # receipt times out
            chain_tx_process(tx_id=tx.id, receipt_timeout=0.5)
        sent = ChainTx.objects.get(pk=tx.pk)
        assert sent.status == ChainTx.Status.SENT and chain.transaction_known(sent.tx_hash)
        # when: the node restarts (its mempool is lost) and the reconciler runs
        node.restart()
        assert chain.get_receipt(sent.tx_hash) is None
        lost = not chain.transaction_known(sent.tx_hash)
        counts = chain_tx_reconcile_pending(min_age_seconds=0)
        if not lost:  # some anvil versions persist the pool: mine it ourselves
            node.mine(1)
            counts = chain_tx_reconcile_pending(min_age_seconds=0)
        # anvil may mine a rebroadcast a moment after accepting it: then the next tick finalizes
        if counts["pending"]:
            chain.wait_for_receipt(sent.tx_hash, timeout=10)
            later = chain_tx_reconcile_pending(min_age_seconds=0)
            counts = {k: counts[k] + later[k] for k in counts}
        # then
        done = ChainTx.objects.get(pk=tx.pk)
        assert lost, "expected the restarted node to have lost its mempool"
        assert counts["rebroadcast"] == 1 and counts["finalized"] == 1
        assert done.status == ChainTx.Status.CONFIRMED
        assert (done.tx_hash, done.raw_tx, done.nonce, done.attempts) == (
            sent.tx_hash,
            sent.raw_tx,
            sent.nonce,
            1,
        )
        assert chain.get_receipt(done.tx_hash)["status"] == 1
    finally:
        node.stop()


@pytest.mark.django_db
def test_a_send_job_for_a_row_this_database_does_not_have_is_dropped(caplog):
    # given: a job left in the broker by an earlier database (e.g. after `make clean-demo`)
    from contracts.jobs import chain_tx_send

    # when
    status = chain_tx_send.run(tx_id=987654)
    # then
    assert status == "missing"
    assert "no ledger row 987654" in caplog.text
