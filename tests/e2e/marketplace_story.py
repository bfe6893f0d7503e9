"""One finished task for the marketplace browser story (tests/e2e/test_marketplace_browser.py) and its actors.

A digits task on anvil trained by 4 real SuperNodes for 2 rounds, one of them malicious (its ClientApp sends NaN
updates: rejected both rounds, judged malicious and banned); then the finalize chain (NFT mint to the creator,
stakes, share claims), the ONNX export, and the chain index applied to the marketplace records. Each actor is a
browser context of one chromium with its own `FakeWallet`, signed in through the login page.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from eth_account import Account

from tests.anvil import DEV_KEYS, rpc
from tests.e2e.browser import CHROMIUM, LAUNCH_ARGS, SHIM, FakeWallet

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
NODES, ROUNDS, MALICIOUS = 4, 2, 3  # participant index 3 sends NaN updates


@dataclass
class Story:
    url: str
    anvil_url: str
    task: object  # tasks.models.Task, completed
    token_id: int
    creator_key: str
    participant_keys: list[str]
    browser: object  # playwright Browser
    tmp_path: Path
    contexts: list = field(default_factory=list)
    actors: dict = field(default_factory=dict)  # key -> (page, wallet) of the signed-in actors

    @property
    def model_path(self) -> str:
        return f"/marketplace/models/{self.token_id}/"

    def actor(self, key: str | None = None, *, balance_wei: int | None = 10**19, next_path: str = "/"):
        """(page, wallet) of a signed-in wallet (a new funded account unless `key`) on `next_path`; the same
        key's page again (moved to `next_path`) on later calls."""
        if key in self.actors:
            page, wallet = self.actors[key]
            page.goto(f"{self.url}{next_path}")
            return page, wallet
        account = Account.from_key(key) if key else Account.create()
        if balance_wei is not None:
            rpc(self.anvil_url, "anvil_setBalance", [account.address, hex(balance_wei)])
        context = self.browser.new_context(viewport=VIEWPORT)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        wallet = FakeWallet(account, rpc_url=self.anvil_url)
        page.expose_function("__walletRequest", wallet)
        page.add_init_script(SHIM)
        page.goto(f"{self.url}/accounts/login/?next={quote(next_path)}", timeout=120_000)
        page.get_by_role("button", name="Sign in with wallet").click()
        page.wait_for_url(f"{self.url}{next_path}")
        if key:
            self.actors[key] = (page, wallet)
        return page, wallet

    def visitor(self):
        """A page of a visitor who is not signed in (no wallet)."""
        context = self.browser.new_context(viewport=VIEWPORT)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        return page

    def participant_address(self, index: int) -> str:
        return Account.from_key(self.participant_keys[index]).address

    def signed_join(self, task, key: str) -> dict:
        """The body of `POST /api/v1/tasks/<id>/join/` for `key`'s wallet: a new node key, a digits data summary and
        the EIP-712 Join signature, as the participant client sends it."""
        from bcfl_core import dataspec, eip712
        from contracts import chain
        from training import datasets
        from training import superlink as sl

        _key, pub = sl.generate_node_key(self.tmp_path / "keys" / f"join-{task.pk}")
        ds = datasets.load_dataset("digits")
        summary = dataspec.data_summary(ds.x_train[:100], ds.y_train[:100])
        address = Account.from_key(key).address
        message = eip712.join_typed_data(
            chain_id=31337,
            verifying_contract=chain.deployment_address("TaskRegistry"),
            task_id=task.chain_task_id,
            participant=address,
            node_public_key=pub.read_text(),
            data_summary=summary,
        )
        return {
            "participant": address,
            "node_public_key": pub.read_text(),
            "data_summary": summary,
            "signature": eip712.sign_typed_data(message, key),
        }

    def close_contexts(self) -> None:
        while self.contexts:
            with contextlib.suppress(Exception):
                self.contexts.pop().close()


def screenshot(page, name: str) -> Path:
    """A full-page PNG of `page` at docs/screenshots/<name>.png (fixed viewport, fonts loaded), reduced to 64
    colours without dithering (a third of the bytes; text and flat page colours survive)."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.fonts.ready")
    path = SCREENSHOTS / f"{name}.png"
    png = page.screenshot(full_page=True, animations="disabled", caret="hide")
    with Image.open(io.BytesIO(png)) as shot:
        small = shot.convert("RGB").quantize(
            colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        small.save(path, format="PNG", optimize=True)
    return path


def index_chain() -> None:
    """What the beat does every few seconds: index new chain events, apply them to the marketplace records."""
    from contracts.indexer import chain_index_events
    from marketplace.services import marketplace_sync_chain_events

    chain_index_events()
    marketplace_sync_chain_events()


def train_and_finalize(tmp_path: Path, settings, monkeypatch, anvil_url: str) -> tuple:
    """The finished task: (task, participant keys, seconds per phase). Raises AssertionError with the reason."""
    from tasks.models import Task
    from tests.e2e.platform_run import start_platform_run
    from training.models import FinalModel
    from training.services.exports import final_model_onnx_export

    t0 = time.monotonic()
    p = start_platform_run(
        tmp_path,
        settings,
        monkeypatch,
        anvil_url,
        nodes=NODES,
        rounds=ROUNDS,
        min_participants=NODES,
        isolation="warm",
        attacks={MALICIOUS: "nan"},
    )
    timings = {"setup_s": time.monotonic() - t0}
    try:
        state = p.follow(timeout=300)
        p.task.refresh_from_db()
        assert state == "finalizing", (state, p.task.status_note)
    finally:
        p.stop()
    timings["training_s"] = time.monotonic() - t0 - timings["setup_s"]
    assert p.finalize() == "completed"
    task = Task.objects.get(pk=p.task.pk)
    assert task.status == Task.Status.COMPLETED, task.status_note
    final_model_onnx_export(final_model=FinalModel.objects.get(task=task))
    index_chain()
    timings["finalize_s"] = time.monotonic() - t0 - timings["setup_s"] - timings["training_s"]
    keys = [_key_of(tmp_path / f"w{i}.key") for i in range(NODES)]
    return task, keys, timings


def _key_of(path: Path) -> str:
    from training.client import wallet as wallet_mod

    return wallet_mod.load_wallet(path).private_key


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)


CREATOR_KEY = DEV_KEYS[5]  # start_platform_run's creator
