"""The Kubernetes versions and EKS add-on versions the local EKS offers.

A fixed catalogue (support statuses as of mid-2025) so that runs are reproducible: version
strings follow EKS's scheme (``v<upstream>-eksbuild.<n>``), each add-on has exactly one
default version per Kubernetes version, and kube-proxy versions track the Kubernetes minor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class ClusterVersion:
    version: str
    patch: str  # kubernetesPatchVersion
    platform: str  # defaultPlatformVersion
    released: str
    end_of_standard_support: str
    end_of_extended_support: str
    status: str  # STANDARD_SUPPORT | EXTENDED_SUPPORT

    def to_api(self, default: bool) -> dict:
        return {
            "clusterVersion": self.version,
            "clusterType": "eks",
            "defaultPlatformVersion": self.platform,
            "defaultVersion": default,
            "releaseDate": _epoch(self.released),
            "endOfStandardSupportDate": _epoch(self.end_of_standard_support),
            "endOfExtendedSupportDate": _epoch(self.end_of_extended_support),
            "status": self.status.lower().replace("_", "-"),
            "versionStatus": self.status,
            "kubernetesPatchVersion": self.patch,
        }


CLUSTER_VERSIONS: tuple[ClusterVersion, ...] = (
    ClusterVersion(
        "1.33", "1.33.2", "eks.9", "2025-05-29", "2026-07-29", "2027-07-29", "STANDARD_SUPPORT"
    ),
    ClusterVersion(
        "1.32", "1.32.6", "eks.15", "2025-01-23", "2026-03-23", "2027-03-23", "STANDARD_SUPPORT"
    ),
    ClusterVersion(
        "1.31", "1.31.10", "eks.31", "2024-09-26", "2025-11-26", "2026-11-26", "STANDARD_SUPPORT"
    ),
    ClusterVersion(
        "1.30", "1.30.14", "eks.39", "2024-05-23", "2025-07-23", "2026-07-23", "EXTENDED_SUPPORT"
    ),
)
DEFAULT_CLUSTER_VERSION = "1.32"
SUPPORTED = tuple(v.version for v in CLUSTER_VERSIONS)


@dataclass(frozen=True)
class AddonKind:
    name: str
    type: str  # networking | storage | ...
    requires_iam_permissions: bool
    needs_nodes: bool  # runs a Deployment, so it needs schedulable nodes to become healthy


@dataclass(frozen=True)
class AddonVersion:
    addon: str
    version: str
    cluster_versions: tuple[str, ...]
    default_for: tuple[str, ...] = ()


ADDONS: dict[str, AddonKind] = {
    kind.name: kind
    for kind in (
        AddonKind("vpc-cni", "networking", True, False),
        AddonKind("kube-proxy", "networking", False, False),
        AddonKind("coredns", "networking", False, True),
        AddonKind("aws-ebs-csi-driver", "storage", True, True),
        AddonKind("snapshot-controller", "storage", False, True),
    )
}

ADDON_VERSIONS: tuple[AddonVersion, ...] = (
    AddonVersion("vpc-cni", "v1.20.0-eksbuild.1", SUPPORTED),
    AddonVersion("vpc-cni", "v1.19.6-eksbuild.7", SUPPORTED, SUPPORTED),
    AddonVersion("vpc-cni", "v1.19.2-eksbuild.1", SUPPORTED),
    AddonVersion("vpc-cni", "v1.18.6-eksbuild.1", ("1.32", "1.31", "1.30")),
    AddonVersion("kube-proxy", "v1.33.3-eksbuild.4", ("1.33",)),
    AddonVersion("kube-proxy", "v1.33.0-eksbuild.2", ("1.33",), ("1.33",)),
    AddonVersion("kube-proxy", "v1.32.6-eksbuild.2", ("1.32",)),
    AddonVersion("kube-proxy", "v1.32.0-eksbuild.2", ("1.32",), ("1.32",)),
    AddonVersion("kube-proxy", "v1.31.10-eksbuild.2", ("1.31",)),
    AddonVersion("kube-proxy", "v1.31.2-eksbuild.3", ("1.31",), ("1.31",)),
    AddonVersion("kube-proxy", "v1.30.14-eksbuild.2", ("1.30",)),
    AddonVersion("kube-proxy", "v1.30.6-eksbuild.3", ("1.30",), ("1.30",)),
    AddonVersion("coredns", "v1.12.2-eksbuild.4", ("1.33", "1.32")),
    AddonVersion("coredns", "v1.12.1-eksbuild.2", ("1.33", "1.32"), ("1.33",)),
    AddonVersion("coredns", "v1.11.4-eksbuild.14", ("1.32", "1.31", "1.30"), ("1.32",)),
    AddonVersion("coredns", "v1.11.3-eksbuild.1", ("1.31", "1.30"), ("1.31", "1.30")),
    AddonVersion("aws-ebs-csi-driver", "v1.46.0-eksbuild.1", SUPPORTED),
    AddonVersion("aws-ebs-csi-driver", "v1.45.0-eksbuild.2", SUPPORTED, SUPPORTED),
    AddonVersion("aws-ebs-csi-driver", "v1.44.0-eksbuild.1", SUPPORTED),
    AddonVersion("snapshot-controller", "v8.2.0-eksbuild.1", SUPPORTED, SUPPORTED),
    AddonVersion("snapshot-controller", "v8.1.0-eksbuild.2", SUPPORTED),
)


def cluster_version(version: str) -> ClusterVersion | None:
    return next((v for v in CLUSTER_VERSIONS if v.version == version), None)


def addon_versions(addon: str, cluster_version: str | None = None) -> list[AddonVersion]:
    """Versions of an add-on, newest first, optionally only those for a Kubernetes version."""
    return [
        v
        for v in ADDON_VERSIONS
        if v.addon == addon and (cluster_version is None or cluster_version in v.cluster_versions)
    ]


def default_addon_version(addon: str, cluster_version: str) -> str | None:
    for version in addon_versions(addon, cluster_version):
        if cluster_version in version.default_for:
            return version.version
    return None


def addon_info(kind: AddonKind, cluster_version: str | None) -> dict:
    """One entry of DescribeAddonVersions; filtered to one Kubernetes version if given."""
    versions = []
    for version in addon_versions(kind.name, cluster_version):
        clusters = (cluster_version,) if cluster_version else version.cluster_versions
        versions.append(
            {
                "addonVersion": version.version,
                "architecture": ["amd64", "arm64"],
                "computeTypes": ["ec2"],
                "compatibilities": [
                    {
                        "clusterVersion": c,
                        "platformVersions": ["*"],
                        "defaultVersion": c in version.default_for,
                    }
                    for c in clusters
                ],
                "requiresConfiguration": False,
                "requiresIamPermissions": kind.requires_iam_permissions,
            }
        )
    return {
        "addonName": kind.name,
        "type": kind.type,
        "addonVersions": versions,
        "publisher": "eks",
        "owner": "aws",
        "defaultNamespace": "kube-system",
    }


def _epoch(day: str) -> float:
    return datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
