"""Load compiled contract artifacts (contracts/artifacts/<Name>.json, written by contracts/compile.py).

No web3 import, so it is safe to use anywhere.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

ROOT_CONTRACTS = Path(__file__).resolve().parent
ARTIFACTS_DIR = ROOT_CONTRACTS / "artifacts"


@cache
def _read(name: str) -> str:
    path = ARTIFACTS_DIR / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"no artifact {name!r} in {ARTIFACTS_DIR} (run `python contracts/compile.py`)"
        )
    return path.read_text()


def load_artifact(name: str) -> dict:
    """Return the artifact of contract `name`: contractName, sourceName, abi, bytecode, deployedBytecode, compiler."""
    return json.loads(_read(name))


def artifact_names() -> list[str]:
    return sorted(p.stem for p in ARTIFACTS_DIR.glob("*.json"))
