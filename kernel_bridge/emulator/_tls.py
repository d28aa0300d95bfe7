"""A self-signed certificate for ``kernel-bridge aca-emulator --tls``.

Some public clients refuse any endpoint that is not ``https`` (Semantic Kernel's sessions
plugin does). The emulator then makes, at start, a key and a certificate valid for
``localhost``, ``127.0.0.1`` and ``::1`` (plus the host it listens on) for 7 days, marked
as its own CA so that a client trusts it through ``SSL_CERT_FILE`` /
``REQUESTS_CA_BUNDLE`` = the printed certificate path. Nothing is written outside a
private temporary directory, and the key file is readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TLSFiles", "make_self_signed"]


@dataclass(frozen=True)
class TLSFiles:
    """Where the certificate (PEM, what clients trust) and its private key are."""

    cert: Path
    key: Path


def _names(host: str) -> list[object]:
    from cryptography import x509

    names: list[object] = [x509.DNSName("localhost")]
    addresses = {"127.0.0.1", "::1"}
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
    else:
        if host not in ("0.0.0.0", "::"):
            addresses.add(host)
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses)]
    return names


def make_self_signed(directory: Path, host: str = "127.0.0.1") -> TLSFiles:
    """Write a fresh EC key and a self-signed certificate for ``host`` into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kernel-bridge aca-emulator")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)  # type: ignore[arg-type]
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "aca-emulator-cert.pem"
    key_path = directory / "aca-emulator-key.pem"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TLSFiles(cert=cert_path, key=key_path)
