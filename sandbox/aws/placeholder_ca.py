"""A self-signed CA certificate for ``certificateAuthority.data`` of local EKS clusters.

moto fills the field with random characters; kubeconfig consumers (client-go: kubectl, helm)
refuse CA data that is not a parseable PEM certificate even for plain-HTTP servers, so the
local EKS answers with a real (if unused) certificate instead.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import functools

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@functools.cache
def placeholder_ca_data() -> str:
    """Base64 of a PEM certificate, as EKS returns it; made once per process."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.PEM)).decode()


def is_pem_data(data: str) -> bool:
    """Whether ``data`` is base64 of a PEM certificate (what real EKS returns)."""
    try:
        return base64.b64decode(data, validate=True).startswith(b"-----BEGIN CERTIFICATE-----")
    except (binascii.Error, ValueError):
        return False
