"""Pod Security Admission: a namespace's ``pod-security.kubernetes.io/enforce`` label refuses
the pods that break its Pod Security Standard, when they are created.

The checks are the standard's, in the API server's words, for the fields the platform's
charts set: baseline refuses host namespaces, privileged containers, added capabilities
beyond the default set, hostPath volumes and host ports; restricted also needs
allowPrivilegeEscalation false, runAsNonRoot, capabilities dropping ALL (adding at most
NET_BIND_SERVICE), a RuntimeDefault or Localhost seccomp profile, and volumes of the
restricted kinds. Pods that exist are left alone, as PSA leaves them; a workload's next pod
is refused (its controller reports FailedCreate).
"""

from __future__ import annotations

from typing import Any

from sandbox.kube.errors import ApiError
from sandbox.kube.store import Store

ENFORCE = "pod-security.kubernetes.io/enforce"
LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def _baseline(spec: dict[str, Any]) -> list[str]:
    found = []
    shared = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if shared:
        found.append(f"host namespaces ({', '.join(shared)})")
    host_paths = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if host_paths:
        found.append(f"hostPath volumes ({', '.join(map(repr, host_paths))})")
    for c in _containers(spec):
        context = c.get("securityContext") or {}
        if context.get("privileged"):
            found.append(f'privileged (container "{c["name"]}" must not set privileged=true)')
        added = set((context.get("capabilities") or {}).get("add") or []) - BASELINE_CAPABILITIES
        if added:
            found.append(
                f'non-default capabilities (container "{c["name"]}" must not include '
                f"{', '.join(sorted(map(repr, added)))} in securityContext.capabilities.add)"
            )
        ports = [p.get("hostPort") for p in c.get("ports") or [] if p.get("hostPort")]
        if ports:
            found.append(f'hostPort (container "{c["name"]}" uses hostPorts {ports})')
    return found


def _restricted(spec: dict[str, Any]) -> list[str]:
    found = []
    pod = spec.get("securityContext") or {}
    kinds = {
        key
        for v in spec.get("volumes") or []
        for key in v
        if key != "name" and key not in RESTRICTED_VOLUMES
    }
    if kinds - {"hostPath"}:  # hostPath is baseline's already
        found.append(f"restricted volume types ({', '.join(sorted(kinds - {'hostPath'}))})")
    for c in _containers(spec):
        context, name = c.get("securityContext") or {}, c["name"]
        if context.get("allowPrivilegeEscalation") is not False:
            found.append(
                f'allowPrivilegeEscalation != false (container "{name}" must set '
                "securityContext.allowPrivilegeEscalation=false)"
            )
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(
                f'unrestricted capabilities (container "{name}" must set '
                'securityContext.capabilities.drop=["ALL"])'
            )
        elif set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(
                f'unrestricted capabilities (container "{name}" must not include '
                "capabilities other than NET_BIND_SERVICE in securityContext.capabilities.add)"
            )
        if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
            found.append(
                f'runAsNonRoot != true (container "{name}" must set '
                "securityContext.runAsNonRoot=true)"
            )
        seccomp = (context.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(
                f'seccompProfile (container "{name}" must set '
                'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'
            )
    return found


def violations(pod: dict[str, Any], level: str) -> list[str]:
    """What in the pod breaks the level's standard; empty when it complies."""
    spec = pod.get("spec") or {}
    if level == "privileged":
        return []
    found = _baseline(spec)
    return found + _restricted(spec) if level == "restricted" else found


def admit_pod(store: Store, pod: dict[str, Any]) -> None:
    """403 Forbidden, naming every violation, when the namespace enforces a standard the
    pod breaks."""
    namespace = (pod.get("metadata") or {}).get("namespace")
    rt = store.registry.by_kind("v1", "Namespace")
    found = store.get(rt, None, namespace) if rt is not None and namespace else None
    labels = ((found or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE, "privileged")
    if level not in LEVELS:
        return
    broken = violations(pod, level)
    if not broken:
        return
    version = labels.get(f"{ENFORCE}-version", "latest")
    name = (pod.get("metadata") or {}).get("name") or (pod.get("metadata") or {}).get(
        "generateName", ""
    )
    raise ApiError(
        403,
        "Forbidden",
        f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": '
        + ", ".join(broken),
    )
