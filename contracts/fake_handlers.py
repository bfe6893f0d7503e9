"""Default handlers of `contracts.fake_chain.FakeChain`: what the platform's calls emit, with the state they need.

State lives on the fake chain: `tasks[id]` = {"creator", "reward" (wei), "rounds", "committed", "status"}
(status "open", "finalized", "failed", "cancelled"; createTask fills it, commitRound counts committed rounds
without emitting anything, as before), `stakes[id]` = {"root", "deposited" (wei), "claimed": {holder: shares},
"withdrawn": {holder: wei}} (opened by finalize/fail) and `nfts[token id]` = model hash. A handler returns the
events [(event, args)] of the called contract or [(contract, event, args)] for another one (TaskRegistry.finalize
also emits StakeToken.StakesOpened). Reverts raise `ChainRevert` with the contract's custom error name.
Share proofs are checked for real against the opened root (`bcfl_core.merkle`); transfers of shares are not
modelled, so pushPayouts pays deposited x claimed shares / 10,000 - withdrawn.

Marketplace state lives in `market_state(chain)`: NFT owners (set by mint, moved by buyNFT / transferFrom),
approvals, listings, licence terms, licences and seller credits; the handlers check what Marketplace.sol checks
and revert with its custom errors (own model, wrong payment, terms changed, not listed, not for sale), and
proceeds reach the stake pool's `deposited` as StakeToken.depositRevenue would. Royalty: `royalty_bps` of the
mint (receiver = the pool).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from bcfl_core.merkle import stake_leaf_hash, verify
from contracts.chain.errors import ChainRevert

if TYPE_CHECKING:
    from contracts.fake_chain import FakeCall

TOTAL_SHARES = 10_000
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_ROOT = "0x" + "00" * 32


def _revert(error: str, **args) -> ChainRevert:
    shown = ", ".join(f"{k}={v}" for k, v in args.items())
    return ChainRevert(f"{error}({shown})", error, args)


def _hex(value) -> str:
    return value if isinstance(value, str) else "0x" + bytes(value).hex()


def _task(call: FakeCall) -> tuple[int, dict]:
    task_id = int(call.args["taskId"])
    task = call.chain.tasks.get(task_id)
    if task is None:
        raise _revert("TaskRegistryUnknownTask", taskId=task_id)
    return task_id, task


def _open_task(call: FakeCall) -> tuple[int, dict]:
    task_id, task = _task(call)
    if task.get("status", "open") != "open" or task.get("cancelled"):
        raise _revert("TaskRegistryNotOpen", taskId=task_id)
    return task_id, task


def create_task(call: FakeCall) -> list[tuple]:
    task_id = len(call.chain.tasks) + 1
    call.chain.tasks[task_id] = {
        "creator": call.sender,
        "reward": call.value,
        "rounds": int(call.args["rounds"]),
        "committed": 0,
        "status": "open",
        "cancelled": False,
    }
    args = {
        "taskId": task_id,
        "creator": call.sender,
        "specHash": call.args["specHash"],
        "reward": call.value,
        "rounds": call.args["rounds"],
        "creatorShareBps": call.args["creatorShareBps"],
    }
    return [("TaskCreated", args)]


def cancel_task(call: FakeCall) -> list[tuple]:
    task_id, task = _task(call)
    if task["creator"] != call.sender:
        raise _revert("TaskRegistryNotCreator", taskId=task_id, caller=call.sender)
    _open_task(call)
    task["cancelled"], task["status"] = True, "cancelled"
    return [("TaskCancelled", {"taskId": task_id, "creator": call.sender, "refund": task["reward"]})]


def commit_round(call: FakeCall) -> list[tuple]:
    """Counts the task's committed rounds (for `fail`); emits nothing, as the fake chain always did."""
    task = call.chain.tasks.get(int(call.args["taskId"]))
    if task is not None:
        task["committed"] = task.get("committed", 0) + 1
    return []


def _open_stakes(call: FakeCall, task_id: int, root: str, reward: int) -> tuple:
    if task_id in call.chain.stakes:
        raise _revert("StakeTokenAlreadyOpened", id=task_id)
    call.chain.stakes[task_id] = {"root": root, "deposited": reward, "claimed": {}, "withdrawn": {}}
    return ("StakeToken", "StakesOpened", {"id": task_id, "stakesRoot": root, "reward": reward})


def finalize(call: FakeCall) -> list[tuple]:
    root = _hex(call.args["stakesRoot"])
    task_id, task = _open_task(call)
    if root == ZERO_ROOT:
        raise _revert("TaskRegistryZeroStakesRoot", taskId=task_id)
    reward = task["reward"]
    opened = _open_stakes(call, task_id, root, reward)
    task["status"] = "finalized"
    final = {
        "taskId": task_id,
        "finalModelHash": call.args["finalModelHash"],
        "stakesRoot": root,
        "reward": reward,
    }
    return [("TaskFinalized", final), opened]


def fail(call: FakeCall) -> list[tuple]:
    root = _hex(call.args["stakesRoot"])
    task_id, task = _open_task(call)
    k, rounds = task.get("committed", 0), task.get("rounds") or 1
    if k == 0 and root != ZERO_ROOT:
        raise _revert("TaskRegistryUnexpectedStakesRoot", taskId=task_id)
    if k != 0 and root == ZERO_ROOT:
        raise _revert("TaskRegistryZeroStakesRoot", taskId=task_id)
    paid = task["reward"] * k // rounds
    events: list[tuple] = [_open_stakes(call, task_id, root, paid)] if k else []
    task["status"] = "failed"
    args = {"taskId": task_id, "roundsCommitted": k, "stakesRoot": root, "paidToStakes": paid}
    return [("TaskFailed", {**args, "refunded": task["reward"] - paid}), *events]


def mint_nft(call: FakeCall) -> list[tuple]:
    task_id, model_hash = int(call.args["taskId"]), _hex(call.args["modelHash"])
    if model_hash == ZERO_ROOT:
        raise _revert("ModelNFTZeroModelHash")
    if task_id == 0:
        raise _revert("ModelNFTZeroTaskId")
    if task_id in call.chain.nfts or model_hash in call.chain.nfts.values():
        raise _revert("ModelNFTAlreadyMinted", taskId=task_id, modelHash=model_hash)
    call.chain.nfts[task_id] = model_hash
    to = call.args["to"]
    market_state(call.chain)["owners"][task_id] = to_checksum_address(to)
    market_state(call.chain)["royalty_bps"][task_id] = int(call.args["royaltyBps"])
    minted = {
        "tokenId": task_id,
        "to": to,
        "modelHash": model_hash,
        "taskId": task_id,
        "royaltyReceiver": call.args["royaltyReceiver"],
        "royaltyBps": call.args["royaltyBps"],
    }
    return [("ModelMinted", minted), ("Transfer", {"from": ZERO_ADDRESS, "to": to, "tokenId": task_id})]


def _pool(call: FakeCall) -> tuple[int, dict]:
    id_ = int(call.args["id"])
    pool = call.chain.stakes.get(id_)
    if pool is None:
        raise _revert("StakeTokenNotOpened", id=id_)
    return id_, pool


def _claim(call: FakeCall, id_: int, pool: dict, holder: str, shares: int, proof: list) -> list[tuple]:
    if not verify([_hex(p) for p in proof], pool["root"], stake_leaf_hash(holder, shares)):
        raise _revert("StakeTokenInvalidProof", id=id_, holder=holder, shares=shares)
    pool["claimed"][holder] = shares
    single = {"operator": call.sender, "from": ZERO_ADDRESS, "to": holder, "id": id_, "value": shares}
    return [("SharesClaimed", {"id": id_, "holder": holder, "shares": shares}), ("TransferSingle", single)]


def claim_shares(call: FakeCall) -> list[tuple]:
    id_, pool = _pool(call)
    holder = call.args["holder"]
    if holder in pool["claimed"]:
        raise _revert("StakeTokenSharesAlreadyClaimed", id=id_, holder=holder)
    return _claim(call, id_, pool, holder, int(call.args["shares"]), call.args["proof"])


def claim_shares_batch(call: FakeCall) -> list[tuple]:
    """Skips holders already claimed (a retried batch is harmless); a bad proof reverts the whole batch."""
    holders, shares, proofs = call.args["holders"], call.args["shares"], call.args["proofs"]
    if not len(holders) == len(shares) == len(proofs):
        raise _revert(
            "StakeTokenLengthMismatch", holders=len(holders), shares=len(shares), proofs=len(proofs)
        )
    id_, pool = _pool(call)
    claimed_before = dict(pool["claimed"])
    events: list[tuple] = []
    try:
        for holder, amount, proof in zip(holders, shares, proofs, strict=True):
            if holder not in pool["claimed"]:
                events += _claim(call, id_, pool, holder, int(amount), proof)
    except ChainRevert:
        pool["claimed"] = claimed_before
        raise
    return events


def deposit_revenue(call: FakeCall) -> list[tuple]:
    if call.value == 0:
        raise _revert("StakeTokenZeroValue")
    id_, pool = _pool(call)
    pool["deposited"] += call.value
    return [("RevenueDeposited", {"id": id_, "from": call.sender, "amount": call.value})]


def push_payouts(call: FakeCall) -> list[tuple]:
    id_, pool = _pool(call)
    events: list[tuple] = []
    for holder in call.args["holders"]:
        accumulated = pool["deposited"] * pool["claimed"].get(holder, 0) // TOTAL_SHARES
        due = accumulated - pool["withdrawn"].get(holder, 0)
        if due > 0:
            pool["withdrawn"][holder] = accumulated
            events.append(("PayoutPushed", {"id": id_, "account": holder, "amount": due}))
    return events


# --- ModelNFT transfers and Marketplace ----------------------------------------------------------------


def market_state(chain) -> dict:
    """The fake chain's NFT/marketplace state (created on first use)."""
    if not hasattr(chain, "_market"):
        chain._market = {
            "owners": {},
            "royalty_bps": {},
            "approved": {},
            "listings": {},
            "terms": {},
            "licences": [],
            "credits": {},
        }
    return chain._market


def _owner_of(call: FakeCall, token_id: int) -> str:
    owner = market_state(call.chain)["owners"].get(token_id)
    if owner is None:
        raise _revert("ERC721NonexistentToken", tokenId=token_id)
    return owner


def nft_approve(call: FakeCall) -> list[tuple]:
    token_id = int(call.args["tokenId"])
    owner = _owner_of(call, token_id)
    if owner != call.sender:
        raise _revert("ERC721InvalidApprover", approver=call.sender)
    market_state(call.chain)["approved"][token_id] = to_checksum_address(call.args["to"])
    return [("Approval", {"owner": owner, "approved": call.args["to"], "tokenId": token_id})]


def _transfer(call: FakeCall, token_id: int, to: str) -> tuple:
    state = market_state(call.chain)
    old = state["owners"][token_id]
    state["owners"][token_id] = to
    state["approved"].pop(token_id, None)
    return ("ModelNFT", "Transfer", {"from": old, "to": to, "tokenId": token_id})


def nft_transfer_from(call: FakeCall) -> list[tuple]:
    token_id = int(call.args["tokenId"])
    if _owner_of(call, token_id) != call.sender:
        raise _revert("ERC721InsufficientApproval", operator=call.sender, tokenId=token_id)
    return [_transfer(call, token_id, to_checksum_address(call.args["to"]))]


def list_nft(call: FakeCall) -> list[tuple]:
    token_id, price = int(call.args["tokenId"]), int(call.args["price"])
    if price == 0:
        raise _revert("MarketplaceZeroPrice")
    if _owner_of(call, token_id) != call.sender:
        raise _revert("MarketplaceNotTokenOwner", tokenId=token_id, caller=call.sender)
    state = market_state(call.chain)
    if state["approved"].get(token_id) != call.chain.addresses.get("Marketplace"):
        raise _revert("MarketplaceNotApproved", tokenId=token_id)
    state["listings"][token_id] = (call.sender, price)
    return [("NFTListed", {"tokenId": token_id, "seller": call.sender, "price": price})]


def cancel_listing(call: FakeCall) -> list[tuple]:
    token_id = int(call.args["tokenId"])
    listing = market_state(call.chain)["listings"].get(token_id)
    if listing is None:
        raise _revert("MarketplaceNotListed", tokenId=token_id)
    if listing[0] != call.sender:
        raise _revert("MarketplaceNotSeller", tokenId=token_id, caller=call.sender)
    del market_state(call.chain)["listings"][token_id]
    return [("NFTListingCancelled", {"tokenId": token_id, "seller": call.sender})]


def _to_pool(call: FakeCall, token_id: int, amount: int) -> tuple:
    pool = call.chain.stakes.get(token_id)
    if pool is None:
        raise _revert("StakeTokenNotOpened", id=token_id)
    pool["deposited"] += amount
    market = call.chain.addresses.get("Marketplace", "")
    return ("StakeToken", "RevenueDeposited", {"id": token_id, "from": market, "amount": amount})


def buy_nft(call: FakeCall) -> list[tuple]:
    token_id = int(call.args["tokenId"])
    state = market_state(call.chain)
    listing = state["listings"].get(token_id)
    if listing is None:
        raise _revert("MarketplaceNotListed", tokenId=token_id)
    seller, price = listing
    if seller == call.sender:
        raise _revert("MarketplaceOwnModel", tokenId=token_id, buyer=call.sender)
    if call.value != price:
        raise _revert("MarketplaceWrongPayment", expected=price, sent=call.value)
    if _owner_of(call, token_id) != seller:
        raise _revert("MarketplaceListingStale", tokenId=token_id)
    royalty = price * state["royalty_bps"].get(token_id, 0) // 10_000
    deposit = [_to_pool(call, token_id, royalty)] if royalty else []
    del state["listings"][token_id]
    state["credits"][seller] = state["credits"].get(seller, 0) + price - royalty
    sold = {"tokenId": token_id, "seller": seller, "buyer": call.sender, "price": price, "royalty": royalty}
    return [("NFTSold", sold), *deposit, _transfer(call, token_id, call.sender)]


def set_licence_terms(call: FakeCall) -> list[tuple]:
    token_id, price = int(call.args["tokenId"]), int(call.args["price"])
    terms_hash, duration = _hex(call.args["termsHash"]), int(call.args["duration"])
    if price and terms_hash == ZERO_ROOT:
        raise _revert("MarketplaceZeroTermsHash")
    if _owner_of(call, token_id) != call.sender:
        raise _revert("MarketplaceNotTokenOwner", tokenId=token_id, caller=call.sender)
    market_state(call.chain)["terms"][token_id] = (call.sender, price, duration, terms_hash)
    args = {"tokenId": token_id, "owner": call.sender, "price": price, "duration": duration}
    return [("LicenceTermsSet", {**args, "termsHash": terms_hash})]


def buy_licence(call: FakeCall) -> list[tuple]:
    token_id = int(call.args["tokenId"])
    expected_price, expected_hash = int(call.args["expectedPrice"]), _hex(call.args["expectedTermsHash"])
    state = market_state(call.chain)
    set_by, price, duration, terms_hash = state["terms"].get(token_id, ("", 0, 0, ZERO_ROOT))
    owner = _owner_of(call, token_id)
    if price == 0 or owner != set_by:
        raise _revert("MarketplaceLicenceNotForSale", tokenId=token_id)
    if owner == call.sender:
        raise _revert("MarketplaceOwnModel", tokenId=token_id, buyer=call.sender)
    if (price, terms_hash) != (expected_price, expected_hash):
        raise _revert(
            "MarketplaceLicenceTermsChanged",
            tokenId=token_id,
            expectedPrice=expected_price,
            price=price,
            expectedTermsHash=expected_hash,
            termsHash=terms_hash,
        )
    if call.value != price:
        raise _revert("MarketplaceWrongPayment", expected=price, sent=call.value)
    deposit = _to_pool(call, token_id, price)
    expires = 0 if duration == 0 else int(time.time()) + duration
    state["licences"].append((token_id, call.sender, price, expires))
    bought = {"tokenId": token_id, "buyer": call.sender, "price": price, "licenceId": len(state["licences"])}
    return [("LicencePurchased", {**bought, "expiresAt": expires, "termsHash": terms_hash}), deposit]


DEFAULT_HANDLERS = {
    ("TaskRegistry", "createTask"): create_task,
    ("TaskRegistry", "cancel"): cancel_task,
    ("TaskRegistry", "commitRound"): commit_round,
    ("TaskRegistry", "finalize"): finalize,
    ("TaskRegistry", "fail"): fail,
    ("ModelNFT", "mint"): mint_nft,
    ("StakeToken", "claimShares"): claim_shares,
    ("StakeToken", "claimSharesBatch"): claim_shares_batch,
    ("StakeToken", "depositRevenue"): deposit_revenue,
    ("StakeToken", "pushPayouts"): push_payouts,
    ("ModelNFT", "approve"): nft_approve,
    ("ModelNFT", "transferFrom"): nft_transfer_from,
    ("Marketplace", "listNFT"): list_nft,
    ("Marketplace", "cancelNFTListing"): cancel_listing,
    ("Marketplace", "buyNFT"): buy_nft,
    ("Marketplace", "setLicenceTerms"): set_licence_terms,
    ("Marketplace", "buyLicence"): buy_licence,
}
