"""Gas used per BCFL contract function on a local anvil, for N = 1, 10, 100, 1000 participants/holders.

Run: .venv/bin/python benchmarks/gas.py
Prints a markdown table and writes benchmarks/results/gas.json (sorted keys).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eth_utils import keccak, to_checksum_address  # noqa: E402
from web3 import Web3  # noqa: E402

from bcfl_core.merkle import leaf_hash, merkle_root  # noqa: E402
from contracts.artifacts import load_artifact  # noqa: E402
from tests.anvil import Anvil, rpc  # noqa: E402
from tests.contracts.solidity.helpers import ETH, Env, deploy_all  # noqa: E402

NS = (1, 10, 100, 1000)
PUSH_BATCH = 100
RESULTS = ROOT / "benchmarks" / "results" / "gas.json"


def holders(n: int, base: int) -> list[str]:
    return [to_checksum_address(f"0x{base + i:040x}") for i in range(n)]


def split(n: int) -> list[int]:
    amounts = [10_000 // n] * n
    amounts[0] += 10_000 - sum(amounts)
    return amounts


def measure(env: Env, url: str) -> tuple[dict, dict]:
    acc = env.accounts
    task, stake, nft, market, ident = env.task, env.stake, env.nft, env.market, env.identity
    gas = lambda receipt: receipt["gasUsed"]  # noqa: E731
    fixed: dict[str, int] = {}
    per_n: dict[str, dict[str, int]] = {
        "commitRound": {},
        "mintShares": {},
        "depositRevenue": {},
        "pushPayouts": {},
    }

    # TaskRegistry
    fixed["createTask"] = gas(
        env.send(task.functions.createTask(keccak(text="spec"), 3, 1000), acc[1], value=ETH)
    )
    for n in NS:
        t = env.create_task(rounds=1)
        leaves = [leaf_hash(f"0x{i + 1:040x}", keccak(text=f"u{n}-{i}"), 10**6 - i, True) for i in range(n)]
        root = merkle_root(leaves)
        per_n["commitRound"][str(n)] = gas(
            env.send(task.functions.commitRound(t, 1, keccak(text="g"), root, n))
        )
        if n == 1:
            fixed["finalize"] = gas(env.send(task.functions.finalize(t, keccak(text="final"), stake.address)))
    t = env.create_task(creator=acc[1])
    fixed["cancel"] = gas(env.send(task.functions.cancel(t), acc[1]))

    # IdentityRegistry
    did = keccak(text="did:pkh:eip155:31337:" + acc[3])
    fixed["ban"] = gas(env.send(ident.functions.ban(did, 1, keccak(text="evidence"), 0)))
    fixed["lift"] = gas(env.send(ident.functions.lift(did, keccak(text="appeal"))))

    # ModelNFT + StakeToken, one model per N
    for k, n in enumerate(NS):
        owner = acc[1]
        receipt = env.send(nft.functions.mint(owner, keccak(text=f"model-{n}"), 1, stake.address, 500))
        if k == 0:
            fixed["mint NFT"] = gas(receipt)
        token_id = env.event(nft, "ModelMinted", receipt)[0]["args"]["tokenId"]
        hs = holders(n, 0xC0000000 + 0x100000 * k)
        for h in hs:  # workers are funded EOAs, not fresh accounts
            rpc(url, "anvil_setBalance", [h, hex(10**16)])
        per_n["mintShares"][str(n)] = gas(env.mint_shares(token_id, hs, split(n)))
        per_n["depositRevenue"][str(n)] = gas(
            env.send(stake.functions.depositRevenue(token_id), acc[5], value=ETH)
        )
        batches = [hs[i : i + PUSH_BATCH] for i in range(0, n, PUSH_BATCH)]
        per_n["pushPayouts"][str(n)] = sum(
            gas(env.send(stake.functions.pushPayouts(token_id, b))) for b in batches
        )
        if n == 1:
            # claim by a share holder (first claim: writes a fresh slot)
            t2 = env.mint_model(owner, keccak(text="claim-model"))
            env.mint_shares(t2, [acc[2], acc[3]], [5000, 5000])
            env.send(stake.functions.depositRevenue(t2), acc[5], value=ETH)
            fixed["claim"] = gas(env.send(stake.functions.claim(t2), acc[2]))

            # Marketplace on this token (shares minted above, so royalties/licences reach the pool)
            env.send(nft.functions.approve(market.address, token_id), owner)
            fixed["listNFT"] = gas(env.send(market.functions.listNFT(token_id, ETH), owner))
            fixed["buyNFT"] = gas(env.send(market.functions.buyNFT(token_id), acc[4], value=ETH))
            fixed["withdraw"] = gas(env.send(market.functions.withdraw(), owner))
            fixed["setLicencePrice"] = gas(
                env.send(market.functions.setLicencePrice(token_id, ETH // 10), acc[4])
            )
            fixed["buyLicence"] = gas(
                env.send(market.functions.buyLicence(token_id), acc[6], value=ETH // 10)
            )
    return fixed, per_n


def table(fixed: dict[str, int], per_n: dict[str, dict[str, int]]) -> str:
    order = [
        "createTask",
        "commitRound",
        "finalize",
        "cancel",
        "ban",
        "lift",
        "mint NFT",
        "mintShares",
        "depositRevenue",
        "claim",
        "pushPayouts",
        "listNFT",
        "buyNFT",
        "setLicencePrice",
        "buyLicence",
        "withdraw",
    ]
    head = "| function | " + " | ".join(f"N={n}" for n in NS) + " |"
    lines = [head, "|---|" + "---:|" * len(NS)]
    for name in order:
        if name in per_n:
            cells = [f"{per_n[name][str(n)]:,}" for n in NS]
        else:
            cells = [f"{fixed[name]:,}"] + ["-"] * (len(NS) - 1)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(per_n: dict[str, dict[str, int]]) -> list[str]:
    push_per_holder = per_n["pushPayouts"]["1000"] // 1000
    mint_1000 = per_n["mintShares"]["1000"]
    return [
        "Gas is receipt gasUsed on anvil (includes the 21,000 base and calldata); '-' = independent of N.",
        "commitRound: round 1 of a fresh task, updatesRoot over N updates; execution gas is identical for every N,"
        " totals differ only by calldata pricing (N=1000 encodes acceptedCount 0x03e8 with one more non-zero byte"
        " than 1/10/100: +12 gas). Later rounds are cheaper (warm digest slot).",
        "depositRevenue: first deposit on the id, with N holders; O(1), identical for every N.",
        f"mintShares: N holders, one ERC-1155 balance each, linear in N (N=1000: {mint_1000:,} gas, inside anvil's"
        " 60M block, about a 30M mainnet-style block).",
        f"pushPayouts: N funded EOA holders sent in batches of {PUSH_BATCH} (N=1000 = sum of 10 txs); about"
        f" {push_per_holder:,} gas per paid holder, so one 1000-holder tx (~{push_per_holder * 1000 / 1e6:.0f}M)"
        " would exceed a 30M block.",
        "claim: a holder's first claim (fresh withdrawn slot). buyNFT: 5% royalty deposited to the stake pool.",
    ]


def main() -> int:
    node = Anvil().start()
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
        started = time.monotonic()
        env = deploy_all(w3)
        fixed, per_n = measure(env, node.url)
        elapsed = time.monotonic() - started
        client = w3.client_version
    finally:
        node.stop()
    md = table(fixed, per_n)
    result = {
        "client": client,
        "compiler": load_artifact("TaskRegistry")["compiler"],
        "fixed": fixed,
        "notes": notes(per_n),
        "per_n": per_n,
        "push_batch_size": PUSH_BATCH,
        "table_markdown": md,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, sort_keys=True, indent=2) + "\n")
    print(md)
    print()
    for note in notes(per_n):
        print(f"- {note}")
    print(f"\n({elapsed:.1f}s; written to {RESULTS.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
