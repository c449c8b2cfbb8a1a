"""HTTPS for the simulated API, as EKS serves it: a CA of the sandbox's own and a server
certificate for 127.0.0.1 signed by it, made fresh at every start.

Serving HTTPS matters beyond looks: client-go (helm, kubectl) sends bearer tokens only
over TLS, so only over HTTPS does the simulator see, and check, the tokens helm uses.
"""

from __future__ import annotations

import base64
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sandbox.certificates import CA_NAME, new_ca

VALID_DAYS = 30


@dataclass(frozen=True)
class ServerTls:
    ca_pem: bytes
    context: ssl.SSLContext

    @property
    def ca_data(self) -> str:
        """The CA as kubeconfigs and DescribeCluster carry it (base64 of the PEM)."""
        return base64.b64encode(self.ca_pem).decode()


def server_tls(host: str) -> ServerTls:
    now = datetime.now(UTC)
    ca_key, ca = new_ca(days=VALID_DAYS)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName("kubernetes")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(CA_NAME)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:  # the ssl module loads keys from files
        chain, private = Path(folder, "server.crt"), Path(folder, "server.key")
        chain.write_bytes(certificate.public_bytes(pem))
        private.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        context.load_cert_chain(chain, private)
    return ServerTls(ca.public_bytes(pem), context)
