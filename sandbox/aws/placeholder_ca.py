"""A self-signed CA certificate for ``certificateAuthority.data`` of local EKS clusters.

moto fills the field with random characters; kubeconfig consumers (client-go: kubectl, helm)
refuse CA data that is not a parseable PEM certificate even for plain-HTTP servers, so the
local EKS answers with a real (if unused) certificate instead.
"""

from __future__ import annotations

import base64
import binascii
import functools

from cryptography.hazmat.primitives import serialization

from sandbox.certificates import new_ca


@functools.cache
def placeholder_ca_data() -> str:
    """Base64 of a PEM certificate, as EKS returns it; made once per process."""
    _, certificate = new_ca(days=3650)
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.PEM)).decode()


def is_pem_data(data: str) -> bool:
    """Whether ``data`` is base64 of a PEM certificate (what real EKS returns)."""
    try:
        return base64.b64decode(data, validate=True).startswith(b"-----BEGIN CERTIFICATE-----")
    except (binascii.Error, ValueError):
        return False
