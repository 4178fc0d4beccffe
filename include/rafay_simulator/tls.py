"""Throw-away TLS material for ``tls=True``: a private CA plus a server certificate it signs.

A CA + leaf pair (rather than one self-signed leaf) is what strict verifiers accept as a trust anchor,
so clients can verify with ``verify=sim.ca_bundle`` exactly as they would against a real console.
Imported only when TLS is requested, so the ``cryptography`` import cost is not paid otherwise.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the generated PEM files (all inside ``directory``)."""

    directory: str
    ca_cert: str
    cert_chain: str
    key: str
    client_cert: str = ""
    client_key: str = ""


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rafay simulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def make_certificates(host: str = "127.0.0.1", directory: str | None = None) -> TlsFiles:
    """Write a CA cert, a server cert valid for ``host``, localhost and 127.0.0.1/::1, and its key."""
    out = Path(directory or tempfile.mkdtemp(prefix="rafay-sim-tls-"))
    now = datetime.now(UTC)
    not_before, not_after = now - timedelta(days=1), now + timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Rafay simulator test CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    addresses = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}
    try:
        addresses.add(ipaddress.ip_address(host))
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    names += [x509.IPAddress(a) for a in sorted(addresses, key=str)]

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    # A client certificate from the same CA, for consoles that ask for mutual TLS (``client_cert=True``).
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(_name("rafay-billing test client"))
        .issuer_name(ca_name)
        .public_key(client_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_path, chain_path, key_path = out / "ca.pem", out / "server-chain.pem", out / "server-key.pem"
    client_path, client_key_path = out / "client.pem", out / "client-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(pem))
    chain_path.write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    client_path.write_bytes(client.public_bytes(pem))
    for path, private in ((key_path, key), (client_key_path, client_key)):
        path.write_bytes(private.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        path.chmod(0o600)
    return TlsFiles(directory=str(out), ca_cert=str(ca_path), cert_chain=str(chain_path), key=str(key_path),
                    client_cert=str(client_path), client_key=str(client_key_path))


def server_context(files: TlsFiles, require_client_cert: bool = False) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving the generated chain; with ``require_client_cert``, the
    handshake fails unless the client presents a certificate signed by the generated CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets: they arrive after the response and make pooled clients think the
    # idle connection has data (urllib3 then drops it), which would defeat keep-alive.
    context.num_tickets = 0
    context.load_cert_chain(files.cert_chain, files.key)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(files.ca_cert)
    return context
