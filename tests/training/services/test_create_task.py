"""``manage.py create_task``: a bundled-dataset task created and registered on chain by a creator key.

On the fake chain (contracts/fake_chain.py): the chain path itself is tested on anvil in
tests/tasks/test_chain_flow.py and tests/contracts/test_wallet_tx.py, and end to end in
tests/e2e/test_demo_story.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from eth_account import Account

from tasks.models import Task
from tests.anvil import DEV_KEYS
from training import datasets, services

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_chain(fake_chain, settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return fake_chain


def test_creates_and_registers_a_digits_task(on_chain, tmp_path):
    out = io.StringIO()
    call_command(
        "create_task",
        "--dev-key",
        "3",
        "--rounds",
        "2",
        "--min-participants",
        "3",
        "--reward-eth",
        "0.01",
        stdout=out,
    )
    task = Task.objects.get()
    assert task.status == Task.Status.RECRUITING and task.chain_task_id is not None, out.getvalue()
    assert task.creator.username == Account.from_key(DEV_KEYS[3]).address
    assert (task.rounds, task.min_participants, task.max_participants) == (2, 3, 3)
    assert task.feature_shape == [64] and task.label_set == list(range(10))
    assert task.reward_wei == 10**16 and task.creator_share_bps == 500
    ds = datasets.load_dataset("digits")
    with np.load(task.validation_file.path, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["y"], ds.y_test)
    assert task.validation_summary["dataset"] == "digits"
    assert f"simulate_participants --task {task.pk}" in out.getvalue()
    # the run config of this task carries the bundled dataset (SuperNodes with partition-id read it)
    run = services.Run.objects.create(task=task, attempt=1)
    assert services.build_run_config(run=run, nodes={})["dataset"] == "digits"


def test_key_file_creator(on_chain, tmp_path):
    key_file = tmp_path / "creator.key"
    key_file.write_text(DEV_KEYS[4])
    key_file.chmod(0o600)
    call_command(
        "create_task",
        "--key-file",
        str(key_file),
        "--dataset",
        "wine",
        "--min-participants",
        "2",
        stdout=io.StringIO(),
    )
    task = Task.objects.get()
    assert task.creator.username == Account.from_key(DEV_KEYS[4]).address
    assert task.status == Task.Status.RECRUITING and task.feature_shape == [13]


@pytest.mark.parametrize("index", ["0", "10"])
def test_platform_signer_and_unknown_dev_keys_are_refused(index, settings):
    with pytest.raises(CommandError, match="--dev-key must be 1-9"):
        call_command("create_task", "--dev-key", index, stdout=io.StringIO())


def test_dev_keys_only_on_anvil(settings):
    settings.CHAIN_ID = 1
    with pytest.raises(CommandError, match="chain id 31337 only"):
        call_command("create_task", stdout=io.StringIO())


def test_a_reverted_registration_ends_the_command_with_the_reason_and_leaves_a_draft(on_chain):
    # given: the chain reverts the creator's createTask
    on_chain.revert_next("TaskRegistryZeroReward")
    # when
    with pytest.raises(
        CommandError, match="Registering task .* failed: The createTask transaction failed on chain"
    ):
        call_command("create_task", "--dev-key", "3", "--min-participants", "2", stdout=io.StringIO())
    # then
    task = Task.objects.get()
    assert task.status == Task.Status.DRAFT and task.chain_task_id is None
    assert "TaskRegistryZeroReward" in task.status_note
