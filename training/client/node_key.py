"""The SuperNode's authentication key: an ECDSA P-384 pair in OpenSSH format (``flwr supernode register``).

Importable without Django; the private key never leaves the participant's machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def generate_node_key(path: str | Path) -> tuple[Path, Path]:
    """ECDSA P-384 key pair in OpenSSH format: ``path`` (private, 0600) and ``path.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP384R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    pub = path.with_name(path.name + ".pub")
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        + b"\n"
    )
    return path, pub
