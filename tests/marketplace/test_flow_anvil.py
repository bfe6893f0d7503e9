"""The marketplace end to end on a real anvil, driven through the pages and the API: licence terms, a licence
bought and its files downloaded, the NFT listed and sold, royalties and licence proceeds in the stake pool, a
holder's claim; every balance checked to the wei (gas = receipt gasUsed x effectiveGasPrice).

Setup (not what is under test): the creator's wallet sends createTask; the platform commits the round, mints the
NFT and finalizes through the ledger (`chain_tx_enqueue` + `chain_tx_process`), which opens the stakes."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from eth_account import Account
from eth_utils import keccak

from bcfl_core.merkle import merkle_proofs, merkle_root, stake_leaf_hash
from contracts import chain
from contracts.models import ChainTx
from contracts.services import chain_tx_enqueue, chain_tx_process
from marketplace.models import Licence, NFTSale, Purchase
from marketplace.services import token_get
from tests.anvil import DEV_KEYS
from tests.marketplace.conftest import BUYER_KEY, OTHER_KEY, OWNER_KEY, send, sync, user_of
from tests.marketplace.test_apis import client_of
from tests.tasks.factories import TaskFactory
from tests.training.factories import FinalModelFactory, RoundFactory

pytestmark = [pytest.mark.django_db, pytest.mark.anvil]

ETH = 10**18
REWARD, LICENCE, NFT_PRICE, ROYALTY_BPS = ETH, ETH // 10, 2 * ETH, 1000
HOLDER_KEY = DEV_KEYS[5]
SHARES = {"owner": 4000, "holder": 6000}


@pytest.fixture
def on_anvil(anvil, settings):
    settings.CHAIN_RPC_URL = anvil.url
    settings.CHAIN_ID = 31337
    call_command("deploy_contracts", "--redeploy-missing")
    return anvil


def _platform(key: str, contract: str, function: str, args: list) -> ChainTx:
    tx = chain_tx_enqueue(key=key, contract_name=contract, function=function, args=args)
    tx = chain_tx_process(tx_id=tx.pk)
    assert tx.status == ChainTx.Status.CONFIRMED, (function, tx.error if hasattr(tx, "error") else tx)
    return tx


def _finalized_nft(owner, holder: str) -> tuple[int, list]:
    """createTask by the owner's wallet, one round committed, NFT minted to the owner, task finalized with a
    stakes root over (owner 40 %, holder 60 %): (task id = token id, leaves as (holder, shares, proof))."""
    create = chain.build_call("TaskRegistry", "createTask", ["0x" + "01" * 32, 1, 1000], value=REWARD)
    tx_hash = send({"to": create["to"], "data": create["data"], "value": hex(REWARD)}, OWNER_KEY)
    receipt = chain.get_w3().eth.wait_for_transaction_receipt(tx_hash)
    created = [e for e in chain.decode_logs("TaskRegistry", receipt) if e["event"] == "TaskCreated"]
    task_id = int(created[0]["args"]["taskId"])
    task = TaskFactory(creator=owner, status="completed", chain_task_id=task_id, chain_id=31337)
    rnd = RoundFactory(task=task, run__task=task)
    FinalModelFactory(
        task=task, source_round=rnd, file=ContentFile(b"anvil-weights", name="model.safetensors")
    )
    model_hash, h = "0x" + keccak(b"anvil-weights").hex(), "0x" + "ab" * 32
    _platform(f"t-commit:{task_id}", "TaskRegistry", "commitRound", [task_id, 1, h, h, 1])
    stake = chain.deployment_address("StakeToken")
    _platform(
        f"t-mint:{task_id}", "ModelNFT", "mint", [owner.username, task_id, model_hash, stake, ROYALTY_BPS]
    )
    holders = [(owner.username, SHARES["owner"]), (holder, SHARES["holder"])]
    leaves = [stake_leaf_hash(a, s) for a, s in holders]
    root = "0x" + merkle_root(leaves).hex()
    _platform(f"t-final:{task_id}", "TaskRegistry", "finalize", [task_id, model_hash, root])
    proofs = merkle_proofs(leaves)
    return task_id, [(a, s, proofs[i]) for i, (a, s) in enumerate(holders)]


class Wallets:
    """Balances and gas paid, per wallet, read from the node."""

    def __init__(self):
        self.w3 = chain.get_w3()
        self.gas: dict[str, int] = {}

    def balance(self, address: str) -> int:
        return self.w3.eth.get_balance(address)

    def sent(self, address: str, tx_hash: str) -> str:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, receipt
        self.gas[address] = self.gas.get(address, 0) + receipt["gasUsed"] * receipt["effectiveGasPrice"]
        return tx_hash


def _call(contract: str, function: str, args: list) -> dict:
    """A direct contract call as a wallet sends it (hex data, no value)."""
    tx = chain.build_call(contract, function, args)
    data = tx["data"]
    return {"to": tx["to"], "data": data if isinstance(data, str) else "0x" + bytes(data).hex()}


def _tx(client, token_id: int, action: str, data: dict | None = None) -> dict:
    resp = client.post(
        reverse("marketplace:tx", args=[token_id, action]), data or {}, content_type="application/json"
    )
    assert resp.status_code == 200, resp.json()
    return resp.json()


def test_licence_download_nft_sale_royalties_and_claim_to_the_wei(on_anvil, client):
    # given: a finalized task whose NFT is the owner's, stakes opened over the owner and a holder
    owner, buyer, nft_buyer = user_of(OWNER_KEY), user_of(BUYER_KEY), user_of(OTHER_KEY)
    holder = Account.from_key(HOLDER_KEY).address
    token_id, leaves = _finalized_nft(owner, holder)
    sync()
    token = token_get(token_id=token_id)
    assert token.owner == owner.username
    stake = chain.contract("StakeToken")
    assert stake.functions.totalDeposited(token_id).call() == REWARD
    wallets = Wallets()
    start = {a: wallets.balance(a) for a in (owner.username, buyer.username, nft_buyer.username, holder)}

    # when: the owner sets licence terms through the page (wallet sends the call, the page confirms)
    client.force_login(owner)
    terms = _tx(client, token_id, "terms", {"price_eth": "0.1", "duration_days": "30", "terms": "Research."})
    tx_hash = wallets.sent(owner.username, send(terms["calls"][0], OWNER_KEY))
    done = client.post(terms["confirm_url"], {"tx_hash": tx_hash}, content_type="application/json")
    assert done.status_code == 200, done.json()

    # and: a buyer buys a licence, confirmed through the API, then downloads the weights
    client.force_login(buyer)
    buy = _tx(client, token_id, "buy-licence", {"wallet_chain_id": 31337})
    assert buy["calls"][0]["value"] == hex(LICENCE)
    tx_hash = wallets.sent(buyer.username, send(buy["calls"][0], BUYER_KEY))
    api = client_of(buyer)
    confirmed = api.post(buy["confirm_url"], {"tx_hash": tx_hash}, format="json")
    assert confirmed.status_code in (200, 201), confirmed.json()
    assert Licence.objects.get(token=token).buyer == buyer.username
    links = api.post(f"/api/v1/models/{token_id}/downloads/")
    assert links.status_code == 200, links.json()
    weights = next(f["url"] for f in links.json()["files"] if f["kind"] == "weights")
    got = api.get(weights)
    assert got.status_code == 200 and b"".join(got.streaming_content) == b"anvil-weights"

    # and: the owner lists the NFT (approve, then list) and another buyer buys it
    client.force_login(owner)
    listing = _tx(client, token_id, "list", {"price_eth": "2"})
    for call in listing["calls"]:
        tx_hash = wallets.sent(owner.username, send(call, OWNER_KEY))
    done = client.post(listing["confirm_url"], {"tx_hash": tx_hash}, content_type="application/json")
    assert done.status_code == 200, done.json()
    client.force_login(nft_buyer)
    buy = _tx(client, token_id, "buy-nft", {"wallet_chain_id": 31337})
    tx_hash = wallets.sent(nft_buyer.username, send(buy["calls"][0], OTHER_KEY))
    confirmed = client_of(nft_buyer).post(buy["confirm_url"], {"tx_hash": tx_hash}, format="json")
    assert confirmed.status_code in (200, 201), confirmed.json()
    token.refresh_from_db()
    royalty = NFT_PRICE * ROYALTY_BPS // 10_000
    assert token.owner == nft_buyer.username and int(NFTSale.objects.get().royalty_wei) == royalty
    assert Purchase.objects.count() == 2

    # then: the reward, the licence price and the royalty are in the stake pool
    pool = REWARD + LICENCE + royalty
    assert stake.functions.totalDeposited(token_id).call() == pool
    # the previous owner lost access, the new one has it
    assert client_of(owner).post(f"/api/v1/models/{token_id}/downloads/").status_code == 403
    assert client_of(nft_buyer).post(f"/api/v1/models/{token_id}/downloads/").status_code == 200

    # and: the seller withdraws its proceeds, the holder claims its shares and its revenue
    market = chain.contract("Marketplace")
    assert market.functions.creditOf(owner.username).call() == NFT_PRICE - royalty
    wallets.sent(owner.username, send(_call("Marketplace", "withdraw", []), OWNER_KEY))
    h_addr, h_shares, h_proof = leaves[1]
    shares_call = _call("StakeToken", "claimShares", [token_id, h_addr, h_shares, h_proof])
    wallets.sent(holder, send(shares_call, HOLDER_KEY))
    assert stake.functions.claimable(token_id, holder).call() == pool * h_shares // 10_000
    wallets.sent(holder, send(_call("StakeToken", "claim", [token_id]), HOLDER_KEY))

    # then: every balance to the wei
    end = {a: wallets.balance(a) for a in start}
    assert end[buyer.username] == start[buyer.username] - LICENCE - wallets.gas[buyer.username]
    assert end[nft_buyer.username] == start[nft_buyer.username] - NFT_PRICE - wallets.gas[nft_buyer.username]
    assert end[owner.username] == start[owner.username] + NFT_PRICE - royalty - wallets.gas[owner.username]
    assert end[holder] == start[holder] + pool * h_shares // 10_000 - wallets.gas[holder]
    assert stake.functions.claimable(token_id, holder).call() == 0
