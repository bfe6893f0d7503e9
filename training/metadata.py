"""Token metadata the wallets and marketplaces read, built from `training.selectors.model_facts`.

- ERC-721 `tokenURI(id)` = `NFT_METADATA_BASE_URI` + id: name, description, image, external_url and
  attributes, the fields OpenSea reads (https://docs.opensea.io/docs/metadata-standards);
- ERC-7572 `contractURI()`: the collection's name, description, image and external_link;
- ERC-1155 `uri(id)` of StakeToken: the `{id}` template, where clients put the id as 64 lowercase hex
  digits without 0x (EIP-1155 "Metadata"); name, description, image, decimals 0 and properties.
- The image is an SVG drawn here: the accuracy curve per round and the key numbers.
Django-free; URLs are built from the site's absolute base.
"""

from __future__ import annotations

from html import escape
from typing import Any

TOTAL_SHARES = 10_000


def stake_uri_id(token_id: int) -> str:
    """EIP-1155 `{id}` substitution: 64 lowercase hex digits, no 0x."""
    return f"{int(token_id):064x}"


def _attributes(facts: dict[str, Any]) -> list[dict[str, Any]]:
    final, model, task = facts.get("final") or {}, facts.get("model") or {}, facts["task"]
    attrs = [
        {"trait_type": "Model kind", "value": model.get("kind")},
        {"trait_type": "Dataset", "value": (facts.get("data") or {}).get("dataset") or "private"},
        {"trait_type": "Rounds", "value": len(facts.get("rounds") or []), "display_type": "number"},
        {
            "trait_type": "Participants",
            "value": int(facts.get("participants") or 0),
            "display_type": "number",
        },
        {"trait_type": "Stakeholders", "value": len(facts.get("stakes") or []), "display_type": "number"},
        {"trait_type": "Judged malicious", "value": len(facts.get("bans") or []), "display_type": "number"},
        {"trait_type": "Aggregation", "value": task.get("aggregation_rule")},
    ]
    if final.get("accuracy") is not None:
        attrs.append(
            {"trait_type": "Accuracy", "value": round(100 * float(final["accuracy"]), 2), "max_value": 100}
        )
    return [a for a in attrs if a["value"] is not None]


def nft_metadata(facts: dict[str, Any], *, site: str) -> dict[str, Any]:
    """ERC-721 metadata of the model's NFT (token id = the task's on-chain id)."""
    task, final = facts["task"], facts.get("final") or {}
    token = task["chain_task_id"]
    acc = final.get("accuracy")
    return {
        "name": f"BCFL model #{token}: {task['title']}",
        "description": (
            f"{task.get('description') or task['title']}\n\nTrained by federated learning on BCFL by "
            f"{facts.get('participants', 0)} participant(s) over {len(facts.get('rounds') or [])} round(s), each "
            f"committed on chain"
            + (
                f"; accuracy {100 * float(acc):.2f}% on the committed validation set"
                if acc is not None
                else ""
            )
            + f". Weights sha256 {final.get('sha256')}."
        ),
        "image": f"{site}/api/nft/{token}/image.svg",
        "external_url": f"{site}{task['url']}",
        "attributes": _attributes(facts),
    }


def contract_metadata(*, site: str, name: str = "BCFL models") -> dict[str, Any]:
    """ERC-7572 collection metadata of ModelNFT."""
    return {
        "name": name,
        "description": "Models trained by federated learning on BCFL. Royalties (ERC-2981) go to each model's "
        "stake pool, shared by its contributors.",
        "image": f"{site}/static/img/bcfl-collection.svg",
        "external_link": f"{site}/",
    }


def stake_metadata(facts: dict[str, Any], *, site: str) -> dict[str, Any]:
    """ERC-1155 metadata of a model's stake token (10,000 shares; revenue is paid pro rata)."""
    task = facts["task"]
    token = task["chain_task_id"]
    return {
        "name": f"BCFL stake in model #{token}",
        "description": f'A share of the revenue of "{task["title"]}" (licences, royalties, the task\'s reward); '
        f"{TOTAL_SHARES:,} shares in all.",
        "image": f"{site}/api/nft/{token}/image.svg",
        "decimals": 0,
        "external_url": f"{site}{task['url']}",
        "properties": {"total_shares": TOTAL_SHARES, "stakeholders": len(facts.get("stakes") or [])},
    }


def curve_svg(facts: dict[str, Any], *, width: int = 480, height: int = 480) -> str:
    """A square SVG: the title, the accuracy per round as a line, the final accuracy and participants."""
    task, final = facts["task"], facts.get("final") or {}
    points = [(r["round"], r["accuracy"]) for r in facts.get("rounds") or [] if r.get("accuracy") is not None]
    left, top, w, h = 50, 120, width - 80, height - 200
    n = max(len(points), 2)
    coords = " ".join(
        f"{left + w * i / (n - 1):.1f},{top + h * (1 - float(acc)):.1f}" for i, (_, acc) in enumerate(points)
    )
    acc = final.get("accuracy")
    headline = f"{100 * float(acc):.1f}% accuracy" if acc is not None else "accuracy not measured"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="#0f172a"/>'
        f'<text x="24" y="44" fill="#e2e8f0" font-size="22">BCFL model #{task["chain_task_id"]}</text>'
        f'<text x="24" y="74" fill="#94a3b8" font-size="14">{escape(str(task["title"])[:60])}</text>'
        f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#334155"/>'
        f'<polyline points="{coords}" fill="none" stroke="#38bdf8" stroke-width="3"/>'
        f'<text x="{left}" y="{top + h + 22}" fill="#94a3b8" font-size="12">round 1</text>'
        f'<text x="{left + w}" y="{top + h + 22}" fill="#94a3b8" font-size="12" text-anchor="end">'
        f"round {len(points)}</text>"
        f'<text x="24" y="{height - 30}" fill="#e2e8f0" font-size="20">{headline} · '
        f"{int(facts.get('participants') or 0)} participants</text></svg>"
    )
