"""The platform CA and the SuperLink's server certificate (TLS, so SuperNode authentication can be on).

Importable without Django. Files in ``certs_dir``: ``ca.crt``, ``ca.key`` (0600), ``server.pem``,
``server.key`` (0600); ECDSA P-384, SHA-384 signatures.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

DEFAULT_CERT_HOSTS = ("127.0.0.1", "localhost")


def ensure_certs(certs_dir: str | Path, hosts: tuple[str, ...] = DEFAULT_CERT_HOSTS) -> dict[str, Path]:
    """Create the platform CA and a server certificate (SANs ``hosts``) once; reuse afterwards.

    When the existing server certificate does not name every host in ``hosts`` (e.g. the platform's public
    hostname was added to ``SUPERLINK_CERT_HOSTS``), a new server certificate is issued by the SAME CA, so the
    ``ca.crt`` participants already have stays valid. Returns the paths under ``ca_cert``, ``ca_key``,
    ``server_cert`` and ``server_key``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    certs_dir = Path(certs_dir)
    paths = {
        "ca_cert": certs_dir / "ca.crt",
        "ca_key": certs_dir / "ca.key",
        "server_cert": certs_dir / "server.pem",
        "server_key": certs_dir / "server.key",
    }
    have_all = all(p.exists() for p in paths.values())
    if have_all and set(hosts) <= _cert_hosts(paths["server_cert"]):
        return paths
    certs_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BCFL platform CA")])
    if have_all:  # keep the CA: participants trust it already
        ca_key = serialization.load_pem_private_key(paths["ca_key"].read_bytes(), password=None)
        ca_cert = x509.load_pem_x509_certificate(paths["ca_cert"].read_bytes())
        ca_name = ca_cert.subject
    else:
        ca_key, ca_cert = _new_ca(ca_name, now)
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = _server_cert(server_key, ca_key, ca_name, hosts, now)
    if not have_all:
        _write_key(ca_key, paths["ca_key"])
        paths["ca_cert"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, paths["server_key"])
    paths["server_cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    return paths


def _write_key(key, path: Path) -> None:
    """A private key as unencrypted PKCS#8 PEM, mode 0600."""
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _server_cert(server_key, ca_key, ca_name, hosts: tuple[str, ...], now: dt.datetime):
    """The SuperLink's certificate for ``hosts`` (IP addresses or DNS names), signed by the CA; 825 days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BCFL SuperLink")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA384())
    )


def _new_ca(ca_name, now):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA384())
    )
    return ca_key, ca_cert


def _cert_hosts(path: Path) -> set[str]:
    """The DNS names and IP addresses a certificate's subjectAltName covers."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }
