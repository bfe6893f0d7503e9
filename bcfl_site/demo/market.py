"""The marketplace half of the demo story: the owner sets licence terms and lists the NFT; a buyer buys a licence,
downloads the model through its signed links and predicts over HTTP; another buyer buys the NFT; the stake
holders' shares are claimed, the creator claims its revenue and the payout job pays the others.

Wallet transactions are built by the marketplace services (what the model page's POST .../tx/<action>/ returns
to the browser) and sent by the person's own dev wallet; purchases are confirmed over HTTP
(`POST /api/v1/purchases/confirm/`), the owner's actions through the services the page's confirm view calls.
"""

from __future__ import annotations

import hashlib
import time
import urllib.request

import numpy as np
from celery import current_app
from django.conf import settings

from bcfl_site.demo import report
from bcfl_site.demo.narrator import StoryError
from contracts import chain
from contracts.models import ChainTx
from marketplace import selectors, services
from training import datasets
from training.models import StakeAllocation

PREDICT_ROWS = 20
TERMS_TEXT = (
    "Demo licence: use this digits classifier in your own products for the licence's duration; "
    "no redistribution of the weights."
)


class Market:
    def __init__(self, story):
        self.story, self.n, self.c = story, story.n, story.c
        self.task = story.task
        self.token_id = int(story.task.chain_task_id)
        self.result = story.result
        self._job_sent: dict[str, float] = {}

    def play(self) -> None:
        self.owner_offers()
        self.buy_licence()
        self.use_model()
        self.buy_nft()
        self.pay_holders()
        self.new_owner_offers()

    def token(self):
        return selectors.model_get(token_id=self.token_id)

    # --- the owner ------------------------------------------------------------------------------------------

    def owner_offers(self) -> None:
        creator = self.story.creator
        token = self.n.wait_until(
            f"model NFT #{self.token_id} in the marketplace (indexed mint)", self.token, timeout=90, poll=2.0
        )
        call = services.licence_terms_call(
            token=token,
            user=creator.user,
            price_wei=self.c.licence_price_wei,
            duration_s=self.c.licence_days * 86400,
            terms=TERMS_TEXT,
        )
        tx = creator.send(call, "Marketplace.setLicenceTerms")
        services.licence_terms_confirm(token=token, user=creator.user, tx_hash=tx)
        approve, listing = services.listing_calls(
            token=token, user=creator.user, price_wei=self.c.nft_price_wei
        )
        creator.send(approve, "ModelNFT.approve")
        tx = creator.send(listing, "Marketplace.listNFT")
        services.listing_confirm(token=token, user=creator.user, tx_hash=tx)
        terms = creator.api("GET", f"/api/v1/models/{self.token_id}/licence-terms/")
        self.n.step(
            f"Owner set licence terms ({report.eth(int(terms['price_wei']))}, {terms['duration_s'] // 86400} days, "
            f"terms hash {terms['terms_hash'][:10]}…) and listed NFT #{self.token_id} for "
            f"{report.eth(self.c.nft_price_wei)}"
        )

    # --- the licence buyer ----------------------------------------------------------------------------------

    def _purchase(self, actor, call: dict, what: str) -> dict:
        tx = actor.send(call, what)
        # 201 recorded now; 200 if the indexer's sync recorded it first
        return actor.api("POST", "/api/v1/purchases/confirm/", {"tx_hash": tx}, expect=(200, 201))

    def buy_licence(self) -> None:
        buyer = self.story.licensee
        buyer.sign_in(self.c.site)
        balance = chain.get_w3().eth.get_balance(buyer.address)
        call = services.licence_buy_call(
            token=self.token(),
            user=buyer.user,
            wallet_chain_id=chain.actual_chain_id(),
            wallet_balance_wei=balance,
        )
        purchase = self._purchase(buyer, call, "Marketplace.buyLicence")
        mine = buyer.api("GET", "/api/v1/licences/mine/")
        licences = [x for x in mine.get("results", mine) if int(x.get("token_id", -1)) == self.token_id]
        if not licences:
            raise StoryError(
                f"The licence buyer's /api/v1/licences/mine/ lists no licence of #{self.token_id}."
            )
        self.result.licence = {"purchase": purchase, "licence": licences[0]}
        self.n.step(
            f"Licence buyer {buyer.address} signed in, bought a licence ({report.eth(self.c.licence_price_wei)}, "
            f"paid into the stake pool); confirmed over HTTP, expires {licences[0].get('expires_at')}"
        )

    def _onnx_ready(self) -> dict | None:
        detail = self.story.licensee.api("GET", f"/api/v1/models/{self.token_id}/")
        return detail if detail.get("onnx_ready") else None

    def _download(self, url: str) -> bytes:
        req = urllib.request.Request(  # noqa: S310 - the site's own signed link
            url, headers={"Authorization": f"Token {self.story.licensee.client.token}"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - the site's own signed link
            return resp.read()

    def use_model(self) -> None:
        buyer = self.story.licensee
        detail = self.n.wait_until("the model's ONNX export", self._onnx_ready, timeout=120, poll=2.0)
        links = buyer.api("POST", f"/api/v1/models/{self.token_id}/downloads/")
        files = {f["kind"]: self._download(f["url"]) for f in links["files"]}
        weights_sha = hashlib.sha256(files.get("weights", b"")).hexdigest()
        if weights_sha != detail["model_sha256"]:
            raise StoryError(
                f"The downloaded weights hash to {weights_sha}, the model is {detail['model_sha256']}."
            )
        ds = datasets.load_dataset("digits")
        scale = datasets.scaling("digits")
        raw = np.rint(ds.x_test[:PREDICT_ROWS] * scale.std + scale.mean).astype(int)
        csv = "\n".join(",".join(str(v) for v in row) for row in raw)
        answer = buyer.api("POST", f"/api/v1/models/{self.token_id}/predict/", {"csv": csv})
        labels = [int(p["label"]) for p in answer["predictions"]]
        right = sum(int(a == b) for a, b in zip(labels, ds.y_test[:PREDICT_ROWS], strict=True))
        self.result.licence.update(
            {
                "files": {k: len(v) for k, v in files.items()},
                "weights_sha256": weights_sha,
                "predicted": labels,
                "correct": right,
                "rows": PREDICT_ROWS,
            }
        )
        self.n.step(
            f"Licence buyer downloaded {', '.join(f'{k} ({len(v):,} B)' for k, v in files.items())} through the "
            f"signed links (weights sha256 matches) and predicted {PREDICT_ROWS} held-out digits over HTTP: "
            f"{right}/{PREDICT_ROWS} right"
        )

    # --- the NFT buyer --------------------------------------------------------------------------------------

    def buy_nft(self) -> None:
        buyer = self.story.nft_buyer
        buyer.sign_in(self.c.site)
        call = services.nft_buy_call(
            token=self.token(), user=buyer.user, wallet_chain_id=chain.actual_chain_id()
        )
        purchase = self._purchase(buyer, call, "Marketplace.buyNFT")
        owner = chain.call("ModelNFT", "ownerOf", [self.token_id])
        seen = buyer.api("GET", f"/api/v1/models/{self.token_id}/")
        if owner.lower() != buyer.address.lower() or str(seen["owner"]).lower() != buyer.address.lower():
            raise StoryError(
                f"After the sale the NFT's owner is {owner} on chain, {seen['owner']} on the site."
            )
        self.result.nft_sale = {"purchase": purchase, "owner": owner}
        royalty = (
            self.c.nft_price_wei
            * int(chain.call("ModelNFT", "royaltyInfo", [self.token_id, 10_000])[1])
            // 10_000
        )
        self.n.step(
            f"NFT buyer {buyer.address} bought NFT #{self.token_id} for {report.eth(self.c.nft_price_wei)}: "
            f"now its owner; royalty {report.eth(royalty)} paid into the stake pool"
        )

    # --- the stake holders ----------------------------------------------------------------------------------

    def _send_job_every(self, name: str, seconds: float) -> None:
        """Send the beat's job `training.jobs.<name>` now, and again every `seconds` while waiting (both jobs
        are idempotent: a batch already in the ledger is not sent twice)."""
        now = time.monotonic()
        if now - self._job_sent.get(name, -1e9) > seconds:
            current_app.send_task(f"training.jobs.{name}")
            self._job_sent[name] = now

    def _shares_claimed(self) -> bool:
        pending = StakeAllocation.objects.filter(task=self.task, claimed_tx_hash="").exists()
        if pending:
            self._send_job_every("stakes_claim_pending", 10)  # the beat sends it every 30 s
        return not pending

    def _paid_out(self) -> bool:
        """Every push of this task's revenue is mined and no holder has a pushable amount left."""
        pushes = ChainTx.objects.filter(task_ref=str(self.task.pk), function="pushPayouts")
        if any(p.status != ChainTx.Status.CONFIRMED for p in pushes):
            return False
        threshold = max(int(settings.PROFITS_PUSH_MIN_WEI), 1)
        due = [
            a.holder
            for a in report.allocations(self.task)
            if int(chain.call("StakeToken", "claimable", [self.token_id, a.holder])) >= threshold
        ]
        if due:
            self._send_job_every("distribute_profits", 15)  # the beat sends it every 5 minutes
        return pushes.exists() and not due

    def pay_holders(self) -> None:
        creator = self.story.creator
        self.n.wait_until(
            "the stake holders' shares to be claimed on chain", self._shares_claimed, timeout=120, poll=3.0
        )
        deposited = int(chain.call("StakeToken", "totalDeposited", [self.token_id]))
        claim = chain.build_call("StakeToken", "claim", [self.token_id])
        data = claim["data"]
        data = "0x" + bytes(data).hex() if isinstance(data, bytes | bytearray) else str(data)
        creator.send({"to": claim["to"], "data": data, "value": 0}, "StakeToken.claim")
        self.n.wait_until("the payout job to pay the other holders", self._paid_out, timeout=120, poll=2.0)
        paid = {
            a.holder: int(chain.call("StakeToken", "withdrawn", [self.token_id, a.holder]))
            for a in report.allocations(self.task)
        }
        self.result.payouts = {"deposited": deposited, "paid": paid}
        self.n.step(
            f"Stake pool received {report.eth(deposited)} (reward + licence + royalty); shares claimed for "
            f"{len(paid)} holders, the creator claimed {report.eth(paid.get(creator.address, 0))} itself, the "
            f"payout job paid {report.eth(sum(paid.values()) - paid.get(creator.address, 0))} to the others"
        )

    # --- left for the visitor -------------------------------------------------------------------------------

    def new_owner_offers(self) -> None:
        """The NFT's new owner offers licences again (terms set by a previous owner lapse with the sale), so a
        visitor importing a demo wallet can buy one in the browser after the story."""
        owner = self.story.nft_buyer
        call = services.licence_terms_call(
            token=self.token(),
            user=owner.user,
            price_wei=self.c.licence_price_wei,
            duration_s=self.c.licence_days * 86400,
            terms=TERMS_TEXT,
        )
        tx = owner.send(call, "Marketplace.setLicenceTerms")
        services.licence_terms_confirm(token=self.token(), user=owner.user, tx_hash=tx)
        self.n.step(
            f"New owner {owner.address} offers licences again ({report.eth(self.c.licence_price_wei)}, "
            f"{self.c.licence_days} days): a licence of model #{self.token_id} is for sale for you to buy"
        )
