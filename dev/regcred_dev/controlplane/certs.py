"""Throw-away PKI for the local control plane: one CA, its leaf certificates, SA keys.

Everything is written as PEM files into the control plane's temporary folder. Leaf
keys use ECDSA P-256 because it is fast to generate; the ServiceAccount token key is
RSA because that is what kube-apiserver and kube-controller-manager expect most widely.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ControlPlanePki", "KeyPairFiles", "make_pki"]

# The first address of the service range: kube-apiserver's own ClusterIP.
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVING_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
SERVING_IPS = ("127.0.0.1", KUBERNETES_SERVICE_IP)
VALIDITY = datetime.timedelta(days=7)


@dataclass(frozen=True)
class KeyPairFiles:
    """A certificate (or public key) and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class ControlPlanePki:
    """All PEM files the local control plane needs."""

    ca_cert: Path
    serving: KeyPairFiles
    admin_client: KeyPairFiles
    controller_manager_client: KeyPairFiles
    service_account: KeyPairFiles  # .cert holds the public key


def make_pki(folder: Path, extra_serving_names: Sequence[str] = ()) -> ControlPlanePki:
    """Create a fresh CA and every certificate and key of the control plane in ``folder``.

    The serving certificate covers localhost, 127.0.0.1 and the in-cluster API names,
    plus `extra_serving_names` (DNS names, for servers reached by another name).
    """
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "regcred-local-ca")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = folder / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    serving_names = [x509.DNSName(name) for name in (*SERVING_DNS_NAMES, *extra_serving_names)] + [
        x509.IPAddress(ipaddress.ip_address(address)) for address in SERVING_IPS
    ]
    serving = _issue(
        folder,
        "apiserver",
        ca_cert,
        ca_key,
        subject=_subject("kube-apiserver"),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        alternative_names=serving_names,
    )
    admin = _issue(
        folder,
        "admin",
        ca_cert,
        ca_key,
        subject=_subject("admin", organization="system:masters"),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    controller_manager = _issue(
        folder,
        "controller-manager",
        ca_cert,
        ca_key,
        subject=_subject("system:kube-controller-manager"),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return ControlPlanePki(
        ca_cert=ca_path,
        serving=serving,
        admin_client=admin,
        controller_manager_client=controller_manager,
        service_account=_service_account_keys(folder),
    )


def _subject(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    # Back-date a little so a slightly skewed clock does not reject a brand-new cert.
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _issue(
    folder: Path,
    name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    alternative_names: Sequence[x509.GeneralName] = (),
) -> KeyPairFiles:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if alternative_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(alternative_names), critical=False
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    files = KeyPairFiles(cert=folder / f"{name}.crt", key=folder / f"{name}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private_key(files.key, key)
    return files


def _service_account_keys(folder: Path) -> KeyPairFiles:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files = KeyPairFiles(cert=folder / "service-account.pub", key=folder / "service-account.key")
    files.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    _write_private_key(files.key, key)
    return files


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
