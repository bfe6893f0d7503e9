"""The steps of tests/e2e/test_marketplace_browser.py, in story order: each takes the `Story` and asserts what
the pages show (and what the chain and the records say behind them)."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from playwright.sync_api import expect

from tests.anvil import rpc
from tests.e2e.marketplace_story import MALICIOUS, ROUNDS, index_chain, screenshot

LICENCE_ETH, NFT_ETH = "0.02", "0.05"
CHAIN_WAIT_MS = 60_000  # a transaction, its receipt, the server's confirmation and the reload


def creator_sees_the_nft_stakes_ban_and_audit_trail(story) -> None:
    from contracts import chain
    from contracts.models import ChainTx
    from training.models import Contribution, Finalization, Round, StakeAllocation

    page, _ = story.actor(story.creator_key, balance_wei=None, next_path=story.model_path)
    # the model page shows the NFT as the creator's, as the chain says
    facts = page.locator("#model-facts")
    assert "(you)" in facts.inner_text()
    owner = chain.call("ModelNFT", "ownerOf", [story.token_id])
    assert owner.lower() == facts.locator("code").first.inner_text().lower()
    # the audit trail: every round's updates Merkle root and commit transaction, the stakes root
    lineage = page.locator("#lineage").inner_text()
    rounds = list(Round.objects.filter(task=story.task).select_related("commit_tx").order_by("number"))
    assert [r.number for r in rounds] == list(range(1, ROUNDS + 1))
    assert page.locator("#lineage-rounds tbody tr").count() == ROUNDS
    for r in rounds:
        assert r.updates_root in lineage and r.commit_tx.tx_hash in lineage
        assert (r.accepted_count, r.rejected_count) == (3, 1)
    assert Finalization.objects.get(task=story.task).stakes_root in lineage
    mint = ChainTx.objects.get(idempotency_key=f"nft-mint:31337:{story.token_id}")
    assert mint.tx_hash in lineage and mint.tx_hash in page.locator("#model-card").inner_text()
    # the stakeholders and their shares; the malicious participant holds none
    holders = page.locator("#stakeholders").inner_text()
    allocations = list(StakeAllocation.objects.filter(task=story.task))
    assert len(allocations) == 4  # the creator and the 3 honest participants
    assert all(a.holder in holders for a in allocations)
    bad = Contribution.objects.select_related("participation__identity").get(task=story.task, malicious=True)
    assert bad.wallet == story.participant_address(MALICIOUS) and bad.wallet not in holders

    # the task page: contributions with "why this share", the malicious one judged, banned, with the evidence
    page.goto(f"{story.url}/tasks/{story.task.pk}/")
    table = page.locator("table.contributions")
    assert "Why this share" in table.locator("thead").inner_text()
    row = table.locator("tr.malicious")
    assert row.count() == 1 and bad.wallet in row.inner_text()
    row.locator("summary").click()
    text = row.inner_text()
    assert f"Judged malicious: flagged in {ROUNDS} of {ROUNDS} rounds" in text and "banned" in text
    assert "round 1: rejected" in text and "round 2: rejected" in text
    honest = table.locator("tbody tr:not(.malicious)").first
    honest.locator("summary").click()
    assert "round 1: +" in honest.inner_text() or "round 1: -" in honest.inner_text()
    ban = bad.participation.identity.bans.select_related("ban_tx").get()
    bans = page.locator("#bans").inner_text()
    assert bad.wallet in bans and ban.reason in bans and ban.evidence_hash in bans
    assert ban.ban_tx.tx_hash and ban.ban_tx.tx_hash in bans
    screenshot(page, "task_contributions")


def owner_sets_licence_terms_and_lists_the_nft(story) -> None:
    from marketplace.models import LicenceTerms, Listing

    page, wallet = story.actor(story.creator_key, next_path=story.model_path, balance_wei=None)
    sent = len(wallet.sent)
    # licence terms: price, 30 days, text; one transaction
    terms = page.locator("#terms-form")
    terms.locator("input[name=price_eth]").fill(LICENCE_ETH)
    terms.locator("input[name=duration_days]").fill("30")
    terms.locator("textarea[name=terms]").fill(
        "Research and evaluation use. No redistribution of the weights."
    )
    terms.get_by_role("button", name="Set licence terms").click()
    expect(page.locator("#licence-offer")).to_contain_text(f"{LICENCE_ETH} ETH", timeout=CHAIN_WAIT_MS)
    assert "30 days" in page.locator("#licence-offer").inner_text()
    # listing: approve, then list; two transactions
    listing = page.locator("#list-form")
    listing.locator("input[name=price_eth]").fill(NFT_ETH)
    listing.get_by_role("button", name="List for sale").click()
    expect(page.locator("#nft-offer")).to_contain_text(f"{NFT_ETH} ETH", timeout=CHAIN_WAIT_MS)
    assert len(wallet.sent) == sent + 3
    assert LicenceTerms.objects.get(token__token_id=story.token_id, active=True).price_wei == 2 * 10**16
    assert Listing.objects.get(token__token_id=story.token_id, active=True).price_wei == 5 * 10**16


def _browse(page, **fields) -> str:
    form = page.locator("#model-filters")
    for name, value in fields.items():
        box = form.locator(f"[name={name}]")
        if isinstance(value, bool):
            box.set_checked(value)
        elif box.evaluate("el => el.tagName") == "SELECT":
            box.select_option(value)
        else:
            box.fill(value)
    form.get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    return page.locator("#model-count").inner_text()


def buyer_browses_buys_a_licence_downloads_and_predicts(story) -> None:
    page, wallet = story.actor(next_path="/marketplace/")
    # browse: search, then filters that keep the model and one that leaves it out
    assert _browse(page, q="digits e2e") == "1 model"
    assert _browse(page, model_kind="mlp", dataset="digits", licence=True, for_sale=True) == "1 model"
    assert _browse(page, accuracy_min="99.9") == "0 models"
    assert "No models match" in page.locator("#model-list").inner_text()
    assert _browse(page, accuracy_min="", price_max="0.01") == "0 models"  # the licence costs 0.02
    assert _browse(page, price_max="") == "1 model"
    screenshot(page, "browse")
    page.locator("#model-list a", has_text="Digits e2e").click()
    page.wait_for_url(f"**{story.model_path}")
    # buy a licence with the wallet
    page.locator("#buy-licence").click()
    expect(page.locator("#access")).to_contain_text("Your licence expires", timeout=CHAIN_WAIT_MS)
    assert len(wallet.sent) == 1
    assert page.locator("#buy-licence").inner_text() == f"Buy another licence ({LICENCE_ETH} ETH)"
    _download_weights(story, page)
    _predict_from_a_digit_image(story, page)
    page.goto(f"{story.url}/marketplace/purchases/")
    assert "Digits e2e" in page.locator("main").inner_text()
    page.goto(f"{story.url}{story.model_path}")
    screenshot(page, "model_detail")


def _download_weights(story, page) -> None:
    from training.models import FinalModel

    page.locator("#download").click()
    links = page.locator("#download-links a")
    expect(links.first).to_be_visible()
    assert {"model.safetensors", "model.onnx", "README.md", "load_model.py"} <= set(links.all_inner_texts())
    href = page.locator("#download-links a", has_text="model.safetensors").get_attribute("href")
    response = page.request.get(f"{story.url}{href}")
    assert response.status == 200
    assert response.headers["content-disposition"] == 'attachment; filename="model.safetensors"'
    assert response.headers["content-type"] == "application/octet-stream"
    body = response.body()
    final = FinalModel.objects.get(task=story.task)
    assert hashlib.sha256(body).hexdigest() == final.sha256 and len(body) > 1000
    # the link is bound to the buyer: a visitor who is not signed in gets nothing
    assert story.visitor().request.get(f"{story.url}{href}").status in (401, 403)


def _digit_png(index: int) -> tuple[bytes, int]:
    from PIL import Image

    from training import datasets

    ds = datasets.load_dataset("digits")
    x = np.asarray(ds.x_test[index], dtype=float).reshape(8, 8)  # 0..16, ink high
    buf = io.BytesIO()
    Image.fromarray((255 - x * 255 / 16).round().astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue(), int(ds.y_test[index])


def _predict_from_a_digit_image(story, page) -> None:
    from training.models import FinalModel
    from training.predict import predict

    png, _label = _digit_png(0)
    expected = predict(FinalModel.objects.get(task=story.task), png)[0]
    page.goto(f"{story.url}{story.model_path}")
    page.locator("#use-model").click()
    page.locator("input[type=file][name=file]").set_input_files(
        files=[{"name": "digit.png", "mimeType": "image/png", "buffer": png}]
    )
    page.get_by_role("button", name="Predict").click()
    row = page.locator("#predictions tbody tr")
    expect(row).to_have_count(1)
    assert row.locator("td").nth(1).inner_text() == str(expected["label"])


def wrong_chain_and_underfunded_purchases_are_refused_in_words(story) -> None:
    # a wallet that stays on another chain: refused on the page before anything is sent
    page, wallet = story.actor(next_path=story.model_path)
    wallet.chain_id, wallet.can_switch = 1, False
    page.locator("#buy-licence").click()
    status = page.locator("#wallet-status")
    expect(status).to_contain_text("Your wallet is on chain 1; the marketplace is on chain 31337")
    assert "Switch networks in your wallet" in status.inner_text() and wallet.sent == []
    # a wallet without enough ETH: the server refuses before the wallet is asked
    page, wallet = story.actor(next_path=story.model_path, balance_wei=10**15)
    page.locator("#buy-licence").click()
    expect(status := page.locator("#wallet-status")).to_contain_text("plus gas")
    assert (
        "Your wallet holds 0.001 ETH" in status.inner_text() and "this costs 0.02 ETH" in status.inner_text()
    )
    assert wallet.sent == []


def two_buyers_race_for_the_nft(story) -> None:
    from contracts import chain
    from marketplace.models import ModelToken, NFTSale
    from marketplace.services.purchases import SAME_BLOCK_LOSER

    first, w1 = story.actor(next_path=story.model_path)
    second, w2 = story.actor(next_path=story.model_path)
    # both click "Buy the NFT" while it is listed; their transactions land in the same block
    rpc(story.anvil_url, "evm_setAutomine", [False])
    try:
        for page, wallet in ((first, w1), (second, w2)):
            page.locator("#buy-nft").click()
            _wait_for(page, lambda wallet=wallet: wallet.sent)
        rpc(story.anvil_url, "evm_mine", [])
    finally:
        rpc(story.anvil_url, "evm_setAutomine", [True])
    # the first owns it; the second is told why nothing was bought
    expect(first.locator("#model-facts")).to_contain_text("(you)", timeout=CHAIN_WAIT_MS)
    assert chain.call("ModelNFT", "ownerOf", [story.token_id]) == w1.account.address
    assert ModelToken.objects.get(token_id=story.token_id).owner == w1.account.address
    assert NFTSale.objects.filter(token__token_id=story.token_id).count() == 1
    # (its replay at the parent block succeeds, so the server can only say what a same-block loss means)
    status = second.locator("#wallet-status")
    expect(status).to_have_text(SAME_BLOCK_LOSER, timeout=CHAIN_WAIT_MS)
    # clicking again on the stale page: refused before the wallet is asked
    second.locator("#buy-nft").click()
    expect(status).to_contain_text("This NFT is not listed for sale.")
    assert len(w2.sent) == 1


def _wait_for(page, condition, timeout_ms: int = 30_000) -> None:
    for _ in range(timeout_ms // 100):
        if condition():
            return
        page.wait_for_timeout(100)  # lets playwright deliver the page's wallet calls
    raise AssertionError("the page's wallet was never asked to send")


def stakeholder_claims_revenue_on_my_stakes(story) -> None:
    from web3 import Web3

    from contracts import chain

    key = story.participant_keys[0]
    page, wallet = story.actor(key, next_path="/stakes/", balance_wei=10**18)
    card = page.locator(f"#stake-{story.task.pk}")
    claimable = chain.call("StakeToken", "claimable", [story.token_id, wallet.account.address])
    assert claimable > 0
    assert card.locator(".claimable").inner_text() == f"{Web3.from_wei(claimable, 'ether')} ETH"
    before = chain.get_w3().eth.get_balance(wallet.account.address)
    card.get_by_role("button", name="Claim").click()
    expect(card.locator(".claimable")).to_have_text("0 ETH", timeout=CHAIN_WAIT_MS)
    receipt = chain.get_w3().eth.get_transaction_receipt(wallet.sent[-1])
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.get_w3().eth.get_balance(wallet.account.address) == before + claimable - fee
    # the beat's indexer adds the payout to the history
    index_chain()
    page.reload()
    payouts = card.locator("table").inner_text()
    assert "claimed by you" in payouts and wallet.sent[-1] in payouts
    screenshot(page, "my_stakes")


def banned_participant_cannot_join(story) -> None:
    from tasks.models import Ban
    from tests.e2e.platform_run import create_digits_task

    other = create_digits_task(
        creator_key=story.creator_key, rounds=1, min_participants=3, max_participants=3, title="Digits again"
    )
    key = story.participant_keys[MALICIOUS]
    page, wallet = story.actor(key, next_path=f"/tasks/{other.pk}/", balance_wei=None)
    ban = Ban.objects.get(task=story.task)
    notice = page.locator("p.bad", has_text="Your identity is banned")
    assert "permanently" in notice.inner_text() and ban.reason in notice.inner_text()
    # the join API, from the signed-in page, with a correctly signed Join: refused with the reason
    answer = page.evaluate(
        """async ([url, body]) => {
             const csrf = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1] || "";
             const r = await fetch(url, {method: "POST", credentials: "same-origin", body: JSON.stringify(body),
               headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}});
             return {status: r.status, body: await r.json()};
           }""",
        [f"/api/v1/tasks/{other.pk}/join/", story.signed_join(other, key)],
    )
    assert answer["status"] == 403, answer
    assert answer["body"]["reason"] == "banned" and ban.reason in answer["body"]["detail"]


def home_page(story) -> None:
    page = story.visitor()
    page.goto(f"{story.url}/")
    assert "Digits e2e" in page.locator("main").inner_text()
    screenshot(page, "home")
