"""100 sends from 4 concurrent workers use nonces exactly 0..99 (real DB concurrency, real anvil)."""

from __future__ import annotations

import queue
import threading

import pytest
from django.db import connection, connections

from contracts import chain
from contracts.chain import ETH_TRANSFER
from contracts.models import ChainTx
from contracts.services import chain_tx_create, chain_tx_process
from tests.anvil import DEV_KEYS
from tests.contracts.conftest import point_at

N_TX, N_WORKERS = 100, 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_never_reuse_or_skip_a_nonce(settings, fresh_anvil):
    # given: a fresh node, a key that has never sent anything, 100 queued transfers
    point_at(settings, fresh_anvil.url, key=DEV_KEYS[3])
    ids = [
        chain_tx_create(
            key=f"n-{i}", contract_name="", function=ETH_TRANSFER, args=["0x" + "44" * 20], value_wei=i + 1
        )[0].id
        for i in range(N_TX)
    ]
    work: queue.Queue[int] = queue.Queue()
    for tx_id in ids:
        work.put(tx_id)
    errors: list[BaseException] = []

    def worker():
        try:
            while True:
                try:
                    tx_id = work.get_nowait()
                except queue.Empty:
                    return
                chain_tx_process(tx_id=tx_id)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=worker) for _ in range(N_WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    # then
    assert errors == []
    rows = list(ChainTx.objects.filter(pk__in=ids))
    assert {r.status for r in rows} == {ChainTx.Status.CONFIRMED}
    assert sorted(r.nonce for r in rows) == list(range(N_TX))
    assert len({r.tx_hash for r in rows}) == N_TX
    assert chain.pending_nonce(rows[0].sender) == N_TX
    assert connection.vendor in {"sqlite", "postgresql"}
