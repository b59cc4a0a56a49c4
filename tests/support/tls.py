"""A throwaway certificate authority and a server certificate for the TLS tests.

Made with the ``cryptography`` package (a test dependency already), in memory, in about 5 ms:
no ``openssl`` binary, no fixed files in the repository that would expire. The server
certificate names ``127.0.0.1`` (as an IP SAN) and ``localhost`` (a DNS SAN), so a client that
verifies hostnames, as ``ssl.create_default_context()`` does, accepts it for either.

Typical use (the ``tls_files`` fixture in ``servers_plugin`` does this once per session)::

    files = make_tls_files(folder)
    server_context.load_cert_chain(files.cert, files.key)
    client_context = ssl.create_default_context(cafile=files.ca)

A second ``make_tls_files()`` into another folder is an *unrelated* CA: trusting it instead
is how a test shows that a certificate from an unknown CA is refused.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_HOSTS", "TlsFiles", "make_tls_files"]

log = logging.getLogger(__name__)

DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")
# Back-dated a little: a client whose clock is a few seconds behind must not see a
# certificate that is "not yet valid".
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one throwaway CA and the server certificate it signed."""

    ca: Path  # what clients trust (ca_file / cafile=)
    cert: Path  # the server's certificate
    key: Path  # the server's private key (unencrypted PKCS#8, mode 0600)
    ca_name: str  # the CA's common name, which OpenSSL's verify errors do not show


def _subject_alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def make_tls_files(
    folder: Path,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    *,
    ca_name: str = "casedesk test CA",
    days: int = 1,
) -> TlsFiles:
    """Write ``ca.pem``, ``server.pem`` and ``server.key`` into ``folder``.

    EC P-256 keys: quick to generate and accepted by every TLS stack involved (Python's ssl,
    aiosmtpd, Dovecot 2.3 without ``ssl_dh``, since ECDHE needs no DH parameters).
    """
    if not hosts:
        raise ValueError("a server certificate needs at least one host name")
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - _CLOCK_SKEW, now + dt.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_subject)
        .issuer_name(ca_subject)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # Clients match the host against the SANs only (the CN is ignored since RFC 6125).
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(hosts)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    files = TlsFiles(
        ca=folder / "ca.pem", cert=folder / "server.pem", key=folder / "server.key", ca_name=ca_name
    )
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    # Created 0600 rather than chmod-ed after writing: the key is never readable by others,
    # not even for a moment. Servers that run as another user get their own copy
    # (DovecotServer does).
    files.key.touch(mode=0o600)
    files.key.chmod(0o600)  # touch() keeps the mode of a file left by an earlier call
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    log.debug("throwaway CA %r and a certificate for %s in %s", ca_name, list(hosts), folder)
    return files
