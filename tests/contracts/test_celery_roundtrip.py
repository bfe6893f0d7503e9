"""A real `celery worker -Q chain` subprocess (Redis db 15) sends a ledger transaction end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contracts.chain import ETH_TRANSFER
from contracts.models import ChainTx
from contracts.services import chain_tx_enqueue
from tests.workers import celery_producer_on, worker_env

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_broker():
    with celery_producer_on(BROKER) as client:
        yield client


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_celery_worker_confirms_an_enqueued_transaction(chain_settings, anvil, redis_broker, tmp_path):
    # given: a chain worker process on the same DB and node
    env = worker_env(broker_url=BROKER, chain_url=anvil.url)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bcfl_site",
            "worker",
            "-Q",
            "chain",
            "--concurrency",
            "1",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        # when
        tx = chain_tx_enqueue(
            key="celery-1", contract_name="", function=ETH_TRANSFER, args=["0x" + "55" * 20], value_wei=12345
        )
        # then
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tx.refresh_from_db()
            if tx.status in (ChainTx.Status.CONFIRMED, ChainTx.Status.FAILED) or worker.poll() is not None:
                break
            time.sleep(0.2)
        assert tx.status == ChainTx.Status.CONFIRMED, (tmp_path / "worker.log").read_text()[-3000:]
        assert tx.gas_used == 21000 and tx.tx_hash
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        log.close()
