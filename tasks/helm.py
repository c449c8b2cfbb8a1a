"""One generic Helm release: install or upgrade a pinned chart with values, skip when the
deployed revision already matches, wait within the component's budget, and undo a failure
(a failed first install is uninstalled, a failed upgrade rolled back to the last good one).

helm validates what it sends the way the API server asks it to: a server that validates
objects itself (every one since Kubernetes 1.27, and the sandbox's simulator) gets them
unvalidated and rejects invalid ones. Validation is never switched off.

Built on pyhelm3 0.5.8, whose known defects are worked around here and only here:
- an integer timeout reaches helm without a unit, which helm rejects: timeouts are always
  passed as ``"<n>s"`` strings.
- ``create_namespace`` defaults to True: it is always passed False; namespaces are created
  with the kubernetes client first, labelled as the platform's.
- a ``kubetoken`` is passed on the command line and logged by pyhelm3 at INFO: clusters are
  always given as a kubeconfig file (mode 0600) instead.
- no command has a time bound of its own (``helm show`` of an unreachable repository, or
  ``helm history`` against a stalled API, waits forever): every command here ends within
  its ``--timeout`` and a grace, or ``HELM_CALL_SECONDS`` for those without one.
- helm runs under a shell, and a cancelled command stops only the shell: helm is run
  directly here, and stopped when its task is cancelled or its time is up.

A failed step raises ``ReleaseFailed``, transient when helm could not reach the API (so
the task retries it) and permanent otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import tempfile
from contextlib import AbstractAsyncContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from pyhelm3 import Client, Command
from pyhelm3 import errors as pyhelm_errors
from pyhelm3.command import CHART_NOT_FOUND, CONNECTION_ERROR
from pyhelm3.errors import Error as PyhelmError
from pyhelm3.errors import ReleaseNotFoundError
from pyhelm3.models import ReleaseRevisionStatus

from blueprint.catalogue import ChartRef
from tasks.kube import converge_object
from tasks.retries import ReleaseFailed, helm_transient

# pyhelm3 logs every failed helm command, including "release not found" answers that are
# the normal way to learn a release is new; failures that matter are raised from here.
logging.getLogger("pyhelm3.command").setLevel(logging.ERROR)
MANAGED_BY = {"app.kubernetes.io/managed-by": "platform-bootstrap"}


# A command without --timeout (show, history, get values, list) gets this long; one with
# --timeout gets that and this grace for helm's own cleanup.
HELM_CALL_SECONDS = 120.0
_DURATION = re.compile(r"^(\d+)s$")


class HelmCallTimeout(TimeoutError):
    pass


# How pyhelm3's callers tell outcomes apart: the error class for what helm printed.
_ERRORS: tuple[tuple[re.Pattern[str], type[PyhelmError]], ...] = (
    (re.compile(r"context canceled"), pyhelm_errors.CommandCancelledError),
    (re.compile(r"etcdserver"), pyhelm_errors.ConnectionError),
    (re.compile(r"release: not found"), ReleaseNotFoundError),
    (re.compile(r"failed to render chart|execution error"), pyhelm_errors.FailedToRenderChartError),
    (
        re.compile(r"rendered manifests contain a resource that already exists"),
        pyhelm_errors.ResourceAlreadyExistsError,
    ),
    (re.compile(r"is invalid"), pyhelm_errors.InvalidResourceError),
    (CHART_NOT_FOUND, pyhelm_errors.ChartNotFoundError),
    (CONNECTION_ERROR, pyhelm_errors.ConnectionError),
)
STOP_GRACE_SECONDS = 5.0
# What helm's environment needs beyond this process's: the AWS credentials its kubeconfig's
# exec plugin signs EKS tokens with (set by RunContext.kubeconfig for its helm calls).
helm_environment: ContextVar[dict[str, str] | None] = ContextVar("helm_environment", default=None)


class _FixedCommand(Command):
    async def run(self, command: list, input: bytes | None = None) -> bytes:
        """Run helm itself (pyhelm3 runs it through a shell, and cancelling stops only the
        shell: helm went on), bounded in time; a cancelled or late command stops helm."""
        argv = [str(self._executable), *(str(part) for part in command)]
        if self._kubeconfig:
            argv += ["--kubeconfig", str(self._kubeconfig)]
        limit = _call_seconds(command)
        extra = helm_environment.get()
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **extra} if extra else None,  # None: this process's
        )
        try:
            async with asyncio.timeout(limit):
                stdout, stderr = await process.communicate(input)
        except TimeoutError:
            verb = " ".join(argv[1:3])
            raise HelmCallTimeout(f"helm {verb}: no answer within {limit:.0f}s") from None
        finally:
            if process.returncode is None:
                await _stop(process)
        if process.returncode == 0:
            return stdout
        text = stderr.decode(errors="replace").lower()
        error = next((cls for pattern, cls in _ERRORS if pattern.search(text)), PyhelmError)
        raise error(process.returncode, stdout, stderr)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM helm (it then gives up its operation), SIGKILL it after a grace."""
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), STOP_GRACE_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


def _call_seconds(command: list) -> float:
    """How long a helm command may take: its own --timeout plus a grace, or the default."""
    for flag, value in itertools.pairwise(command):
        if flag == "--timeout" and (match := _DURATION.match(str(value))):
            return int(match[1]) + HELM_CALL_SECONDS
    return HELM_CALL_SECONDS


def _failure(what: str, error: PyhelmError, undone: str = "") -> ReleaseFailed:
    stderr = error.stderr.decode(errors="replace").strip()
    tail = f"; {undone}" if undone else ""
    return ReleaseFailed(f"{what} failed: {stderr}{tail}", transient=helm_transient(stderr))


@dataclass(frozen=True)
class ReleaseResult:
    name: str
    namespace: str
    chart: str
    version: str
    revision: int
    status: str
    action: str  # installed | upgraded | unchanged

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"


def write_kubeconfig(config: dict[str, Any], directory: Path | None = None) -> Path:
    """A private kubeconfig file for helm (never a token on a command line)."""
    handle, name = tempfile.mkstemp(prefix="kubeconfig-", suffix=".yaml", dir=directory)
    with os.fdopen(handle, "w") as out:
        yaml.safe_dump(config, out)
    os.chmod(name, 0o600)
    return Path(name)


def ensure_namespace(api: k8s.ApiClient, name: str) -> bool:
    """Create the namespace if missing; True when created."""
    core = k8s.CoreV1Api(api)
    try:
        core.read_namespace(name)
        return False
    except ApiException as exc:
        if exc.status != 404:
            raise
    try:
        core.create_namespace({"metadata": {"name": name, "labels": dict(MANAGED_BY)}})
    except ApiException as exc:
        if exc.status != 409:  # created meanwhile by a concurrent release
            raise
    return True


def chart_source(chart: ChartRef, repository_override: str | None) -> tuple[str, str | None]:
    """(chart reference, --repo) for helm: a mirror serves every chart by name; otherwise
    the chart's own https repository or OCI address."""
    if repository_override:
        return chart.name, repository_override.rstrip("/")
    if chart.is_oci:
        return chart.reference, None
    return chart.name, chart.repository


async def ensure_release(
    *,
    helm: Path,
    kubeconfig: Path,
    chart: ChartRef,
    namespace: str,
    values: dict[str, Any],
    timeout_seconds: float,
    repository_override: str | None = None,
    slot: AbstractAsyncContextManager[Any] | None = None,
) -> ReleaseResult:
    """Converge one release to ``chart`` at its pinned version with ``values``; helm runs
    holding ``slot`` (the environment's helm concurrency bound)."""
    timeout = f"{max(1, int(timeout_seconds))}s"
    client = Client(
        _FixedCommand(executable=str(helm), kubeconfig=kubeconfig, default_timeout=timeout),
        executable=str(helm),
    )
    what = f"helm release {chart.release} ({chart.name} {chart.version}) in {namespace}"
    ref, repo = chart_source(chart, repository_override)
    try:
        resolved = await client.get_chart(ref, repo=repo, version=chart.version)
    except PyhelmError as exc:
        raise _failure(f"{what}: fetching the chart", exc) from None
    async with slot or nullcontext():
        try:
            # A release left pending-* by a run that was killed is put back first.
            current = await client.get_proceedable_revision(
                chart.release, namespace=namespace, timeout=timeout
            )
            if not await client.should_install_or_upgrade_release(current, resolved, values):
                assert current is not None
                return _result(chart, namespace, current.revision, current.status, "unchanged")
            deployed_before = await _last_deployed(client, chart.release, namespace)
        except PyhelmError as exc:
            raise _failure(f"{what}: reading its state", exc) from None
        try:
            revision = await client.install_or_upgrade_release(
                chart.release,
                resolved,
                values,
                namespace=namespace,
                create_namespace=False,
                timeout=timeout,
                wait=True,
            )
        except PyhelmError as exc:
            undone = await _undo(client, chart.release, namespace, deployed_before, timeout)
            raise _failure(what, exc, undone) from None
    action = "upgraded" if deployed_before is not None else "installed"
    return _result(chart, namespace, revision.revision, revision.status, action)


def _result(chart: ChartRef, namespace: str, revision: int, status: Any, action: str):
    status_text = status.value if isinstance(status, ReleaseRevisionStatus) else str(status)
    return ReleaseResult(
        chart.release, namespace, chart.name, chart.version, revision, status_text, action
    )


async def _last_deployed(client: Client, release: str, namespace: str) -> int | None:
    """The newest revision that was deployed successfully (now or before an upgrade)."""
    try:
        current = await client.get_current_revision(release, namespace=namespace)
    except ReleaseNotFoundError:
        return None
    good = (ReleaseRevisionStatus.DEPLOYED, ReleaseRevisionStatus.SUPERSEDED)
    revisions = [r for r in await current.release.history() if r.status in good]
    return max((r.revision for r in revisions), default=None)


async def _undo(
    client: Client, release: str, namespace: str, last_good: int | None, timeout: str
) -> str:
    try:
        if last_good is None:
            await client.uninstall_release(release, namespace=namespace, wait=True, timeout=timeout)
            return "the failed first install was uninstalled"
        current = await client.get_current_revision(release, namespace=namespace)
        await current.release.rollback(last_good, wait=True, timeout=timeout, cleanup_on_fail=True)
        return f"rolled back to revision {last_good}"
    except PyhelmError as exc:
        return f"undoing it failed too: {exc.stderr.decode(errors='replace').strip()}"


@dataclass(frozen=True)
class DeployedRelease:
    """A release as helm records it: its newest revision, chart and user-supplied values."""

    name: str
    namespace: str
    chart: str  # as helm reports it: "<name>-<version>"
    revision: int
    status: str
    values: dict[str, Any]

    def runs(self, chart: ChartRef) -> bool:
        """Whether it is ``chart`` at its pinned version."""
        return self.chart == f"{chart.name}-{chart.version}"


async def deployed_release(
    *, helm: Path, kubeconfig: Path, release: str, namespace: str
) -> DeployedRelease | None:
    """The newest revision of ``release`` (``helm history``) with the values it was given
    (``helm get values``): what ``ensure_release`` compares before an upgrade. None when
    the release is not installed. Changes nothing (and so takes no helm slot)."""
    command = _FixedCommand(executable=str(helm), kubeconfig=kubeconfig)
    try:
        newest = list(await command.history(release, max_revisions=1, namespace=namespace))
    except ReleaseNotFoundError:
        return None
    revision = int(newest[-1]["revision"])
    values = await command.get_values(release, namespace=namespace, revision=revision)
    return DeployedRelease(
        release, namespace, newest[-1]["chart"], revision, newest[-1]["status"], values
    )


def crd_in_sync(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a CRD read from the cluster carries everything the chart's copy sets."""
    return _contains(current.get("spec") or {}, wanted.get("spec") or {})


def _contains(current: Any, wanted: Any) -> bool:
    """Whether ``current`` has everything ``wanted`` sets: the API server adds defaults
    (e.g. ``spec.conversion``) that are no reason to replace a CRD."""
    if isinstance(wanted, dict):
        return isinstance(current, dict) and all(
            _contains(current.get(k), v) for k, v in wanted.items()
        )
    return current == wanted


async def list_releases(helm: Path, kubeconfig: Path) -> list[dict[str, Any]]:
    """Every release in the cluster (name, namespace, chart, app version, revision, status)."""
    command = _FixedCommand(executable=str(helm), kubeconfig=kubeconfig)
    return list(await command.list(all_namespaces=True, all=True))


async def uninstall_release(
    *,
    helm: Path,
    kubeconfig: Path,
    release: str,
    namespace: str,
    timeout_seconds: float,
    slot: AbstractAsyncContextManager[Any] | None = None,
) -> bool:
    """Uninstall one release and wait until its objects are gone, holding ``slot`` (the
    same bound as installs); False when there was no such release (a teardown run again
    finds nothing to do)."""
    timeout = f"{max(1, int(timeout_seconds))}s"
    command = _FixedCommand(executable=str(helm), kubeconfig=kubeconfig, default_timeout=timeout)
    async with slot or nullcontext():
        try:
            await command.uninstall(release, namespace=namespace, wait=True, timeout=timeout)
        except ReleaseNotFoundError:
            return False
        except PyhelmError as exc:
            raise _failure(f"helm uninstall of {release} in {namespace}", exc) from None
    return True


async def chart_crds(
    helm: Path, chart: ChartRef, repository_override: str | None = None
) -> list[dict[str, Any]]:
    """The CRDs a chart ships in its crds/ folders (``helm show crds``)."""
    client = Client(_FixedCommand(executable=str(helm)), executable=str(helm))
    ref, repo = chart_source(chart, repository_override)
    resolved = await client.get_chart(ref, repo=repo, version=chart.version)
    return [crd for crd in await resolved.crds() if crd]


def apply_crds(api: k8s.ApiClient, crds: list[dict[str, Any]]) -> list[str]:
    """Create missing CRDs and replace those whose spec differs; returns what changed.
    (helm itself never upgrades CRDs of a crds/ folder, so this is also how they move.)"""
    extensions = k8s.ApiextensionsV1Api(api)
    changes = []
    for crd in crds:
        name = crd["metadata"]["name"]

        def update(found: Any, crd: dict[str, Any] = crd, name: str = name) -> str | None:
            current = api.sanitize_for_serialization(found)
            if crd_in_sync(current, crd):
                return None
            version = current["metadata"]["resourceVersion"]
            body = {**crd, "metadata": {**crd["metadata"], "resourceVersion": version}}
            extensions.replace_custom_resource_definition(name, body)
            return "updated"

        change = converge_object(
            lambda name=name: extensions.read_custom_resource_definition(name),
            lambda crd=crd: extensions.create_custom_resource_definition(crd),
            update,
        )
        if change:
            changes.append(f"{change} {name}")
    return changes
