"""The local stack's certificates: a CA of its own and a broker certificate it signs, made with the
``cryptography`` package. Clients trust the CA (``ca.pem``); the broker presents ``broker-keystore.pem`` (its
PKCS#8 key and certificate chain, as Kafka's PEM key store reads it). The names in the certificate are those
clients dial (localhost and the loopback addresses), and hostname checking stays on."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from base.credentials import write_secret

CA_YEARS = 10
BROKER_DAYS = 825
KEYSTORE = "broker-keystore.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Concord local stack"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _pem_cert(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def make_ca(now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Concord local CA")
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def make_server_certificate(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, hosts: list[str],
                            now: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=BROKER_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def ensure_certificates(folder: Path, hosts: list[str]) -> None:
    """The CA and the broker's key store in ``folder``, made once (kept across restarts; wiped by reset).
    A broker certificate that does not name every host, or is close to expiry, is made again."""
    ca_file, ca_key_file, store = folder / "ca.pem", folder / "ca.key", folder / KEYSTORE
    now = datetime.now(UTC)
    if ca_file.exists() and ca_key_file.exists():
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    else:
        ca_key, ca = make_ca(now)
        write_secret(ca_key_file, _pem_key(ca_key))
        write_secret(ca_file, _pem_cert(ca))
        store.unlink(missing_ok=True)
    if store.exists() and _still_good(store, hosts, now):
        return
    key, certificate = make_server_certificate(ca_key, ca, hosts, now)
    write_secret(store, _pem_key(key) + _pem_cert(certificate) + _pem_cert(ca))


def _still_good(store: Path, hosts: list[str], now: datetime) -> bool:
    certificate = x509.load_pem_x509_certificates(store.read_bytes())[0]
    if certificate.not_valid_after_utc - now < timedelta(days=30):
        return False
    alternatives = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    named = {str(n) for n in alternatives.get_values_for_type(x509.IPAddress)} | set(
        alternatives.get_values_for_type(x509.DNSName))
    return set(hosts) <= named
