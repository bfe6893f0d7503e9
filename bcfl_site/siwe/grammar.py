"""Which part of an EIP-4361 message is wrong, in words.

The ``siwe`` parser only says yes or no (its ABNF parse error points at offset 0), and its
re-serialisation silently drops what it cannot write back (an empty ``Request ID``, a ``Resources:``
line with no entries, a ``Chain ID`` with leading zeros). These helpers name the field, so every
refusal of a message the standard allows says which field and why.
"""

from __future__ import annotations

import re
from itertools import zip_longest

from siwe.defs import DATETIME

_HEADER = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?[^/?#\s]+ wants you to sign in with your Ethereum account:"
)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
# RFC 3986 reserved / unreserved characters and spaces (EIP-4361 `statement`).
_STATEMENT = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]+")
_TIME_FORM = "an RFC 3339 date-time with a time zone, e.g. 2026-01-01T00:00:00Z"
# (label, line prefix, value pattern, optional, what the value must be), in the order EIP-4361 fixes.
_FIELDS = (
    ("URI", "URI: ", r"\S+", False, "a URI"),
    ("Version", "Version: ", r"1", False, "1"),
    ("Chain ID", "Chain ID: ", r"[0-9]+", False, "a decimal number"),
    (
        "Nonce",
        "Nonce: ",
        r"[A-Za-z0-9]{8,}",
        False,
        "the nonce you were given (8 or more letters and digits)",
    ),
    ("Issued At", "Issued At: ", DATETIME, False, _TIME_FORM),
    ("Expiration Time", "Expiration Time: ", DATETIME, True, _TIME_FORM),
    ("Not Before", "Not Before: ", DATETIME, True, _TIME_FORM),
    ("Request ID", "Request ID: ", r"[-._~!$&'()*+,;=:@%a-zA-Z0-9]*", True, "URI path characters"),
)
_LABELS = {
    "domain": "the domain (first line)",
    "address": "the address (second line)",
    "statement": "the statement",
    "uri": "URI",
    "version": "Version",
    "chain_id": "Chain ID",
    "nonce": "Nonce",
    "issued_at": "Issued At",
    "expiration_time": "Expiration Time",
    "not_before": "Not Before",
    "request_id": "Request ID",
    "resources": "Resources",
}


def _head_problem(lines: list[str]) -> tuple[str | None, int]:
    """Problem with the header, address and statement block, else None and the index of the URI line."""
    if not _HEADER.fullmatch(lines[0]):
        return "the first line must be '<domain> wants you to sign in with your Ethereum account:'", 0
    if len(lines) < 3 or not _ADDRESS.fullmatch(lines[1]):
        return "the second line must be the address (0x and 40 hex digits, EIP-55 checksummed)", 0
    if lines[2] != "":
        return "an empty line must follow the address", 0
    i = 3
    if i < len(lines) and lines[i] != "" and not lines[i].startswith("URI: "):
        if not _STATEMENT.fullmatch(lines[i]):
            return "the statement may only hold ASCII letters, digits, spaces and URI punctuation", 0
        i += 1
    if i >= len(lines) or lines[i] != "":
        return "an empty line must come before the URI line (after the statement, if there is one)", 0
    return None, i + 1


def diagnose(message: str) -> str | None:
    """What makes ``message`` unparseable as EIP-4361, naming the field; None if no field is to blame."""
    lines = message.split("\n")
    problem, i = _head_problem(lines)
    if problem:
        return problem
    for label, prefix, pattern, optional, form in _FIELDS:
        line = lines[i] if i < len(lines) else None
        if line is None or not line.startswith(prefix):
            if optional:
                continue
            return f"the {label} line is missing or out of order (expected '{prefix}…' on line {i + 1})"
        if not re.fullmatch(pattern, line[len(prefix) :]):
            return f"{label} must be {form}, not '{line[len(prefix) :][:60]}'"
        i += 1
    if i < len(lines) and lines[i] == "Resources:":
        for offset, line in enumerate(lines[i + 1 :], start=i + 2):
            if not re.fullmatch(r"- \S+", line):
                return f"each Resources entry must be '- <URI>' (line {offset})"
        return None
    if i < len(lines):
        return (
            f"line {i + 1} ('{lines[i][:40]}') is not an EIP-4361 field or is out of order; optional "
            "fields come in the order Expiration Time, Not Before, Request ID, Resources"
        )
    return None


def field_error(errors: list[dict]) -> str:
    """A pydantic ValidationError's ``errors()`` as 'Issued At is not valid: …' (the first error)."""
    first = errors[0]
    label = _LABELS.get(str(first["loc"][0]) if first["loc"] else "", "a field")
    return f"{label} is not valid: {first['msg']}"


def canonical_mismatch(sent: str, canonical: str) -> str:
    """Why ``sent`` differs from the parser's re-serialisation ``canonical``, naming the field."""
    for got, want in zip_longest(sent.split("\n"), canonical.split("\n")):
        if got == want:
            continue
        if got is not None and got.rstrip() == "Request ID:":
            return "Request ID is empty: leave the line out or give it a value"
        if got == "Resources:":
            return "Resources lists no URI: leave the line out or list at least one '- <URI>'"
        label = next((f[0] for f in _FIELDS if got and got.startswith(f[1])), "a")
        return f"the {label} line is not in canonical EIP-4361 form: expected '{want}', got '{got}'"
    return "it is not in canonical EIP-4361 form"
