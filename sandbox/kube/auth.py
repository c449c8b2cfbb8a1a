"""Who may call the simulated API: bearer tokens checked as EKS checks them.

A request without credentials is let through (the sandbox has no RBAC). A bearer token must
be the sandbox kubeconfig's own, or an EKS token: ``k8s-aws-v1.`` and a base64url
presigned STS GetCallerIdentity URL that signs the ``x-k8s-aws-id`` header. EKS accepts
such a token for 15 minutes from its signing time; here that is the latency profile's
``eks_token`` guide minutes (15) at its time scale (15 real minutes when the profile is
off). Anything else is
answered 401 Unauthorized, as the API server answers a client whose token is bad or stale.

Sent to a cluster's EKS endpoint, an EKS token's principal (from its access key) must also
have an access entry in that cluster (401 without one, as EKS answers), and one of the
entry's access policies must cover the request (403 Forbidden otherwise); discovery is open
to every principal the cluster knows.
"""

from __future__ import annotations

import base64
import time
from calendar import timegm
from urllib.parse import parse_qs, urlsplit

from sandbox.cluster import AccessGrant
from sandbox.kube.errors import ApiError
from sandbox.settings import Latency

SANDBOX_TOKEN = "sandbox-token"  # the token of the kubeconfigs the sandbox writes
EKS_PREFIX = "k8s-aws-v1."
REAL_TOKEN_SECONDS = 15 * 60


class Unauthorized(Exception):
    pass


def check(authorization: str | None, latency: Latency, now: float | None = None) -> str | None:
    """The access key of a valid EKS token, None for no token or the sandbox's; raises
    ``Unauthorized`` naming why a request's credentials are refused."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("only bearer tokens are accepted")
    if token == SANDBOX_TOKEN:
        return None
    if not token.startswith(EKS_PREFIX):
        raise Unauthorized("unknown bearer token")
    signed_at, access_key = _eks_token_claims(token.removeprefix(EKS_PREFIX))
    lifetime = token_lifetime(latency)
    age = (now if now is not None else time.time()) - signed_at
    if age > lifetime:
        raise Unauthorized(f"EKS token expired: signed {age:.1f}s ago, valid {lifetime:.1f}s")
    return access_key


def token_lifetime(latency: Latency) -> float:
    """How long an EKS token is accepted after its X-Amz-Date: which counts whole seconds,
    so a token signed a moment ago may look a second old."""
    if latency.time_scale <= 0:
        return REAL_TOKEN_SECONDS + 1
    return max(latency.seconds("eks_token"), latency.min_token_seconds) + 1


def _discovery(path: str) -> bool:
    """/, /version, /openapi/..., /api[/v1], /apis[/group[/version]]: no resources."""
    parts = path.strip("/").split("/")
    return (
        parts[0] in ("", "version", "openapi")
        or (parts[0] == "api" and len(parts) <= 2)
        or (parts[0] == "apis" and len(parts) <= 3)
    )


def authorize(grant: AccessGrant, method: str, path: str) -> ApiError | None:
    """Why the cluster refuses a principal's request, None when its access entry allows it."""
    if not grant.entry:
        return ApiError(401, "Unauthorized", "Unauthorized")
    if method == "GET" and _discovery(path):
        return None
    namespace = _namespace(path)
    if grant.allows(method, namespace):
        return None
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return ApiError(
        403,
        "Forbidden",
        f'User "{grant.principal}" cannot {method.lower()} {path}{where}: no access policy '
        "of its access entry covers it",
    )


def _namespace(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if "namespaces" in parts:
        at = parts.index("namespaces")
        if at + 1 < len(parts):
            return parts[at + 1]
    return None


def _eks_token_claims(encoded: str) -> tuple[float, str]:
    """(signing time, access key) of an EKS token's presigned URL."""
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise Unauthorized("EKS token is not base64url") from None
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if not (parts.hostname or "").startswith("sts.") or query.get("Action") != "GetCallerIdentity":
        raise Unauthorized("EKS token is not a presigned STS GetCallerIdentity URL")
    if "x-k8s-aws-id" not in query.get("X-Amz-SignedHeaders", "").split(";"):
        raise Unauthorized("EKS token does not sign the x-k8s-aws-id header (the cluster)")
    if not query.get("X-Amz-Signature") or not query.get("X-Amz-Credential"):
        raise Unauthorized("EKS token is not signed")
    try:
        signed = float(timegm(time.strptime(query.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")))
    except ValueError:
        raise Unauthorized("EKS token has no valid X-Amz-Date") from None
    return signed, query["X-Amz-Credential"].split("/")[0]
