"""The environment of a container the kubelet runs as a process, composed as on EKS.

In order, later ones winning where they overlap:

1. the image's: PATH (with the sandbox's helm and kubectl, which the image has), LANG, HOME
   (the pod's folder), and the simulator's own PYTHONPATH and VIRTUAL_ENV, so the process
   imports the same code (the image holds it on AWS);
2. the container's ``envFrom`` and ``env`` (values, fieldRefs, Secret and ConfigMap keys);
3. what EKS's pod identity webhook adds to a pod whose ServiceAccount carries
   ``eks.amazonaws.com/role-arn`` (IRSA), unless the container set it: the role, a
   projected service account token file, the cluster's region, regional STS;
4. the sandbox's network, unless the container set it: AWS_ENDPOINT_URL (every process in
   the sandbox reaches AWS at the local AWS) and KUBECONFIG, a kubeconfig for the
   simulator with the sandbox token in the pod's folder. In a real pod the Kubernetes
   clients read the service account under /var/run/secrets, which is not the sandbox's to
   write; KUBERNETES_SERVICE_HOST stays unset, so they fall back to KUBECONFIG.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.kube.objects import annotations, stable_hex
from sandbox.tools import tools_dir

ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
TOKEN_PATH = "eks.amazonaws.com/serviceaccount/token"  # under /var/run/secrets on EKS
TOKEN_AUDIENCE = "sts.amazonaws.com"
TOKEN_SECONDS = 86400  # what the webhook asks for
PASSED_THROUGH = ("PYTHONPATH", "VIRTUAL_ENV")

Lookup = Callable[[str, str, str], dict[str, Any] | None]  # (kind, namespace, name)


class EnvError(Exception):
    """A container's env names a Secret, ConfigMap or key that is not there: the kubelet
    reports CreateContainerConfigError and tries again."""


def compose(
    pod: dict[str, Any],
    container: dict[str, Any],
    folder: Path,
    lookup: Lookup,
    fields: dict[str, str],
    cluster: tuple[str, str] | None,
    issuer: str | None,
    aws_endpoint: str | None,
    kubeconfig: Path | None,
) -> dict[str, str]:
    """The process's environment. ``fields``: values the kubelet knows before the pod's
    status shows them (status.podIP, status.hostIP)."""
    env = {
        # The image has helm and kubectl on its PATH (deployments/Containerfile).
        "PATH": os.pathsep.join(
            [str(tools_dir() / "bin"), os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")]
        ),
        "LANG": "C.UTF-8",
        "HOME": str(folder),
        **{name: os.environ[name] for name in PASSED_THROUGH if name in os.environ},
    }
    env.update(_container_env(pod, container, lookup, fields))
    account = _service_account(pod, lookup)
    role = annotations(account).get(ROLE_ANNOTATION) if account else None
    if role and cluster:
        token = folder / TOKEN_PATH
        token.parent.mkdir(parents=True, exist_ok=True)
        token.write_text(projected_token(pod, issuer))
        region = cluster[0]
        for name, value in {
            "AWS_ROLE_ARN": role,
            "AWS_WEB_IDENTITY_TOKEN_FILE": str(token),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        }.items():
            env.setdefault(name, value)
    if aws_endpoint:
        env.setdefault("AWS_ENDPOINT_URL", aws_endpoint)
    if kubeconfig:
        env.setdefault("KUBECONFIG", str(shutil.copy(kubeconfig, folder / "kubeconfig")))
    return env


def _service_account(pod: dict[str, Any], lookup: Lookup) -> dict[str, Any] | None:
    name = pod["spec"].get("serviceAccountName") or "default"
    return lookup("ServiceAccount", pod["metadata"].get("namespace", "default"), name)


def _container_env(
    pod: dict[str, Any], container: dict[str, Any], lookup: Lookup, fields: dict[str, str]
) -> dict[str, str]:
    namespace = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, ref_key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(ref_key)
            if ref is None:
                continue
            obj = lookup(kind, namespace, ref.get("name", ""))
            if obj is None and not ref.get("optional"):
                raise EnvError(f'{kind.lower()} "{ref.get("name")}" not found')
            prefix = source.get("prefix") or ""
            env.update({prefix + k: v for k, v in _data(kind, obj).items()})
    for item in container.get("env") or []:
        name = item.get("name", "")
        source = item.get("valueFrom")
        if source is None:
            env[name] = str(item.get("value") or "")
            continue
        value = _value_from(pod, namespace, source, lookup, fields)
        if value is not None:
            env[name] = value
    return env


def _value_from(
    pod: dict[str, Any],
    namespace: str,
    source: dict[str, Any],
    lookup: Lookup,
    fields: dict[str, str],
) -> str | None:
    if "fieldRef" in source:
        return field_value(pod, source["fieldRef"].get("fieldPath", ""), fields)
    for kind, ref_key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
        ref = source.get(ref_key)
        if ref is None:
            continue
        data = _data(kind, lookup(kind, namespace, ref.get("name", "")))
        if ref.get("key") in data:
            return data[ref["key"]]
        if ref.get("optional"):
            return None
        raise EnvError(
            f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name')}"
        )
    return None  # resourceFieldRef: not simulated


def _data(kind: str, obj: dict[str, Any] | None) -> dict[str, str]:
    if obj is None:
        return {}
    if kind == "ConfigMap":
        return {k: str(v) for k, v in (obj.get("data") or {}).items()}
    found = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return {**found, **(obj.get("stringData") or {})}


def field_value(pod: dict[str, Any], path: str, fields: dict[str, str]) -> str:
    """The downward API's value of ``fieldPath`` for the pod."""
    if path in fields:
        return fields[path]
    metadata, spec = pod["metadata"], pod["spec"]
    for prefix, mapping in (("metadata.labels", "labels"), ("metadata.annotations", "annotations")):
        if path.startswith(prefix + "['") and path.endswith("']"):
            return (metadata.get(mapping) or {}).get(path[len(prefix) + 2 : -2], "")
    simple = {
        "metadata.name": metadata.get("name"),
        "metadata.namespace": metadata.get("namespace"),
        "metadata.uid": metadata.get("uid"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "spec.nodeName": spec.get("nodeName"),
        "status.podIP": (pod.get("status") or {}).get("podIP"),
        "status.hostIP": (pod.get("status") or {}).get("hostIP"),
    }
    return str(simple.get(path) or "")


def projected_token(pod: dict[str, Any], issuer: str | None) -> str:
    """A service account token shaped as the API server projects it for IRSA: a JWT for the
    audience STS. The local AWS's STS takes it unverified; its signature is a stand-in."""
    namespace = pod["metadata"].get("namespace", "default")
    account = pod["spec"].get("serviceAccountName") or "default"
    issued = int(time.time())
    claims = {
        "aud": [TOKEN_AUDIENCE],
        "exp": issued + TOKEN_SECONDS,
        "iat": issued,
        "nbf": issued,
        "iss": issuer or "https://kubernetes.default.svc",
        "sub": f"system:serviceaccount:{namespace}:{account}",
        "kubernetes.io": {
            "namespace": namespace,
            "pod": {"name": pod["metadata"]["name"], "uid": pod["metadata"].get("uid", "")},
            "serviceaccount": {"name": account},
        },
    }
    header = {"alg": "RS256", "kid": stable_hex("sandbox-issuer", length=40)}
    parts = [_segment(header), _segment(claims), _b64(stable_hex(str(claims)).encode())]
    return ".".join(parts)


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
