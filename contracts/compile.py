"""Compile contracts/solidity/**/*.sol with solc-js and write contracts/artifacts/<Name>.json.

Usage (from anywhere):
    python contracts/compile.py          # (re)write the artifacts
    python contracts/compile.py --check  # exit 1 if committed artifacts differ from a fresh compile

Deterministic: sources are sorted and named by their repository-relative path, metadata hashes are disabled and
the artifacts are written with sorted keys, so two runs are byte-identical (CI fails on drift).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLIDITY_DIR = ROOT / "contracts" / "solidity"
ARTIFACTS_DIR = ROOT / "contracts" / "artifacts"
NODE_SCRIPT = ROOT / "contracts" / "solc_compile.js"

SETTINGS: dict = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 200},
    "metadata": {"bytecodeHash": "none"},
}
OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]


class CompileError(RuntimeError):
    pass


def source_files() -> list[Path]:
    return sorted(SOLIDITY_DIR.rglob("*.sol"), key=lambda p: p.relative_to(ROOT).as_posix())


def standard_json_input() -> dict:
    sources = {p.relative_to(ROOT).as_posix(): {"content": p.read_text()} for p in source_files()}
    if not sources:
        raise CompileError(f"no .sol files under {SOLIDITY_DIR}")
    # Artifacts only for our own sources, not for the OpenZeppelin files they import.
    selection = {name: {"*": OUTPUTS} for name in sources}
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {**SETTINGS, "outputSelection": selection},
    }


def run_solc(std_input: dict) -> dict:
    node = shutil.which("node")
    if node is None:
        raise CompileError("node not found on PATH (solc-js needs Node.js)")
    proc = subprocess.run(  # noqa: S603 - fixed local script
        [node, str(NODE_SCRIPT)],
        input=json.dumps(std_input),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise CompileError(f"solc-js failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    output = json.loads(proc.stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        msgs = "\n".join(e.get("formattedMessage") or e.get("message", "") for e in errors)
        raise CompileError(f"Solidity compilation failed:\n{msgs}")
    # Warnings in our own sources only (OZ's transient-storage notice is expected and not actionable here).
    for warning in output.get("errors", []):
        if warning.get("sourceLocation", {}).get("file", "").startswith("contracts/"):
            print(warning.get("formattedMessage") or warning.get("message", ""), file=sys.stderr)
    return output


def build_artifacts() -> dict[str, str]:
    """Compile everything and return {artifact file name: serialized JSON text}."""
    std_input = standard_json_input()
    output = run_solc(std_input)
    compiler = {"version": output["compilerVersion"], "settings": SETTINGS}
    artifacts: dict[str, str] = {}
    for source_name in sorted(std_input["sources"]):
        for name, data in sorted(output.get("contracts", {}).get(source_name, {}).items()):
            filename = f"{name}.json"
            if filename in artifacts:
                raise CompileError(f"duplicate contract name {name!r} (in {source_name})")
            artifact = {
                "contractName": name,
                "sourceName": source_name,
                "abi": data["abi"],
                "bytecode": "0x" + data["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "compiler": compiler,
            }
            artifacts[filename] = json.dumps(artifact, sort_keys=True, indent=2) + "\n"
    return artifacts


def check(artifacts: dict[str, str]) -> list[str]:
    problems = []
    for filename, text in sorted(artifacts.items()):
        path = ARTIFACTS_DIR / filename
        if not path.exists():
            problems.append(f"missing: {path.relative_to(ROOT)}")
        elif path.read_text() != text:
            problems.append(f"differs: {path.relative_to(ROOT)}")
    for path in sorted(ARTIFACTS_DIR.glob("*.json")):
        if path.name not in artifacts:
            problems.append(f"stale:   {path.relative_to(ROOT)} (no such contract)")
    return problems


def write(artifacts: dict[str, str]) -> None:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    for path in ARTIFACTS_DIR.glob("*.json"):
        if path.name not in artifacts:
            path.unlink()
    for filename, text in artifacts.items():
        path = ARTIFACTS_DIR / filename
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed artifacts, write nothing"
    )
    args = parser.parse_args(argv)
    try:
        artifacts = build_artifacts()
    except CompileError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check:
        problems = check(artifacts)
        if problems:
            print("contract artifacts are out of date (run `python contracts/compile.py`):", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"{len(artifacts)} artifacts up to date")
        return 0
    write(artifacts)
    print(f"wrote {len(artifacts)} artifacts to {ARTIFACTS_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
