"""A creator signs in with a (fake) browser wallet, fills the task form and escrows the reward on anvil.

The wallet signs the server-built `createTask` call locally and sends the raw transaction to the real
node; the platform confirms the task from the receipt and the `TaskCreated` event only.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from django.core.management import call_command
from eth_account import Account

from tests.anvil import DEV_KEYS
from tests.e2e.browser import BROWSER_MARKS, SHIM, FakeWallet

pytestmark = BROWSER_MARKS


@pytest.fixture
def validation_npz(tmp_path):
    from training.datasets import load_dataset

    data = load_dataset("digits")
    path = tmp_path / "validation.npz"
    np.savez(path, x=data.x_test[:200], y=data.y_test[:200])
    return path


def test_create_a_funded_task_from_the_browser(
    live_server, transactional_db, chromium_page, anvil, settings, validation_npz
):
    from tasks.models import Task

    # given: contracts on the chain and a creator with a funded wallet (anvil dev account #7)
    settings.CHAIN_RPC_URL = anvil.url
    call_command("deploy_contracts", "--redeploy-missing")
    wallet = FakeWallet(Account.from_key(DEV_KEYS[7]), rpc_url=anvil.url)
    page = chromium_page
    page.expose_function("__walletRequest", wallet)
    page.add_init_script(SHIM)
    page.goto(f"{live_server.url}/accounts/login/?next=/tasks/new/", timeout=120_000)
    page.get_by_role("button", name="Sign in with wallet").click()
    page.wait_for_url("**/tasks/new/")

    # when: the form is filled and submitted, then the wallet sends the escrow transaction
    page.fill("#id_title", "Digits classifier")
    page.fill("#id_description", "Handwritten digits, 8x8.")
    page.fill("#id_feature_shape", "64")
    page.fill("#id_label_set", "0-9")
    page.fill("#id_min_samples_per_participant", "20")
    page.fill("#id_rounds", "3")
    page.fill("#id_min_participants", "3")  # the default rule (validation leave-one-out) needs 3
    page.fill("#id_max_participants", "5")
    page.fill("#id_reward_eth", "1.5")
    page.fill("#id_creator_share_percent", "20")
    page.fill("#id_licence_terms", "Non-commercial use.")
    page.set_input_files("#id_validation_file", str(validation_npz))
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.wait_for_url("**/register/")
    page.get_by_role("button", name="Send with my wallet").click()

    # then: the platform confirmed it from the receipt and moved it to recruiting
    page.wait_for_url("**/tasks/*/", timeout=60_000)
    task = Task.objects.get(title="Digits classifier")
    assert task.status == Task.Status.RECRUITING
    assert task.chain_task_id is not None
    assert task.creator.username == wallet.account.address
    assert task.reward_wei == 1_500_000_000_000_000_000
    assert "eth_sendTransaction" in wallet.calls
    assert "Recruiting" in page.content()
    if shots := os.environ.get("E2E_SCREENSHOTS"):
        page.screenshot(path=f"{shots}/task_detail.png", full_page=True)
