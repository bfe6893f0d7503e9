"""The model card of a trained model, in the Hugging Face model-card layout: YAML metadata between `---`
lines, then Markdown (https://huggingface.co/docs/hub/model-cards). Django-free: built from a plain
``facts`` dict (`training.selectors.model_facts`), so anyone can rebuild it from public data.

``facts`` keys: task {id, chain_task_id, title, description, creator, licence_terms, spec_hash, url},
data {feature_shape, labels, dataset}, model {kind, hyperparameters, parameters}, rounds [{round, accuracy,
loss, accepted, rejected, global_sha256, commit_tx_hash}], final {accuracy, loss, sha256, weights_sha256},
participants (int), stakes [{holder, shares}], bans [{wallet, reason}], chain {chain_id, registry,
model_nft, stake_token, create_tx_hash, settle_tx_hash, mint_tx_hash, stakes_root, explorer}.
"""

from __future__ import annotations

from typing import Any

import yaml

TOTAL_SHARES = 10_000


def _front_matter(facts: dict[str, Any]) -> dict[str, Any]:
    task, final, data = facts["task"], facts.get("final") or {}, facts.get("data") or {}
    dataset = data.get("dataset") or "private"
    metrics = [
        {
            "type": "accuracy",
            "value": final.get("accuracy"),
            "name": "Accuracy on the committed validation set",
        },
        {
            "type": "loss",
            "value": final.get("loss"),
            "name": "Cross-entropy loss on the committed validation set",
        },
    ]
    return {
        "license": "other",
        "license_name": f"bcfl-task-{task['id']}",
        "library_name": "pytorch",
        "tags": ["federated-learning", "bcfl", "flower", "safetensors"],
        "datasets": [dataset],
        "metrics": ["accuracy", "loss"],
        "model-index": [
            {
                "name": task["title"],
                "results": [
                    {
                        "task": {"type": "classification", "name": "Classification"},
                        "dataset": {"name": dataset, "type": dataset},
                        "metrics": [m for m in metrics if m["value"] is not None],
                    }
                ],
            }
        ],
    }


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return lines


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * float(v):.2f}%"


def _tx(chain: dict, tx: str) -> str:
    if not tx:
        return ""
    base = chain.get("explorer") or ""
    return f"[`{tx[:10]}…`]({base.rstrip('/')}/tx/{tx})" if base else f"`{tx}`"


def model_card(facts: dict[str, Any]) -> str:
    """The card's text (UTF-8 Markdown with YAML front matter). Raises KeyError if ``facts`` lacks `task`."""
    task, chain = facts["task"], facts.get("chain") or {}
    model, data, final = facts.get("model") or {}, facts.get("data") or {}, facts.get("final") or {}
    out = ["---", yaml.safe_dump(_front_matter(facts), sort_keys=False).rstrip(), "---", ""]
    out += [f"# {task['title']}", "", task.get("description") or "", ""]
    out += [
        f"Trained by federated learning on BCFL (task {task['id']}, on chain #{task.get('chain_task_id')}) by "
        f"{facts.get('participants', 0)} participant(s) over {len(facts.get('rounds') or [])} round(s); "
        f"every round is committed on chain. Final accuracy {_pct(final.get('accuracy'))}, loss "
        f"{final.get('loss')}.",
        "",
        "## Model",
        "",
        f"- Kind: `{model.get('kind')}`"
        + (f", {model['parameters']} parameters" if model.get("parameters") else ""),
        f"- Hyper-parameters: `{model.get('hyperparameters')}`",
        f"- Weights: `model.safetensors`, sha256 `{final.get('sha256')}` (arrays hash "
        f"`{final.get('weights_sha256')}`)",
        "",
        "## Data",
        "",
        f"- Example shape {data.get('feature_shape')}, labels {data.get('labels')}",
        f"- Task spec hash (committed by `createTask`): `{task.get('spec_hash')}`",
        "",
        "## Training rounds",
        "",
    ]
    out += _table(
        ["Round", "Accuracy", "Loss", "Accepted", "Rejected", "Global model", "commitRound"],
        [
            [
                r["round"],
                _pct(r.get("accuracy")),
                r.get("loss"),
                r.get("accepted"),
                r.get("rejected"),
                f"`{(r.get('global_sha256') or '')[:16]}…`",
                _tx(chain, r.get("commit_tx_hash") or ""),
            ]
            for r in facts.get("rounds") or []
        ],
    )
    out += _stakes_and_records(facts, task, chain)
    return "\n".join(out)


def _stakes_and_records(facts: dict[str, Any], task: dict[str, Any], chain: dict[str, Any]) -> list[str]:
    out = ["", "## Contributions and stakes", ""]
    out += _table(
        ["Holder", "Shares", "Stake"],
        [
            [f"`{s['holder']}`", s["shares"], f"{100 * s['shares'] / TOTAL_SHARES:.2f}%"]
            for s in facts.get("stakes") or []
        ],
    )
    bans = facts.get("bans") or []
    out += ["", "## Participants judged malicious", ""]
    out += [f"- `{b['wallet']}`: {b['reason']}" for b in bans] or ["None."]
    out += [
        "",
        "## On-chain records",
        "",
        f"- Chain id {chain.get('chain_id')}; TaskRegistry `{chain.get('registry')}`; ModelNFT "
        f"`{chain.get('model_nft')}` (token id {task.get('chain_task_id')}); StakeToken `{chain.get('stake_token')}`",
        f"- createTask: {_tx(chain, chain.get('create_tx_hash') or '')}",
        f"- Stakes Merkle root: `{chain.get('stakes_root')}`",
        f"- Settlement (finalize): {_tx(chain, chain.get('settle_tx_hash') or '')}; NFT mint: "
        f"{_tx(chain, chain.get('mint_tx_hash') or '')}",
        f"- Audit: `python manage.py verify_task {task['id']}` recomputes every record from public data.",
        "",
        "## Licence",
        "",
        task.get("licence_terms") or "No terms given by the creator; ask the NFT owner.",
        "",
    ]
    return out
