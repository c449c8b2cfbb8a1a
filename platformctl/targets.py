"""Which target a command acts on: the sandbox for ``--env sandbox``, AWS otherwise."""

from __future__ import annotations

from rich.console import Console

from blocks.target import PlatformTarget, aws_target, sandbox_target
from blueprint.errors import SpecError
from blueprint.spec import PlatformSpec
from tasks.pace import REAL_TIME

SANDBOX_ENV = "sandbox"
# Pace of a sandbox run whose latency profile is off: a 30 s poll becomes 0.1 s.
SANDBOX_DEFAULT_TIME_SCALE = 0.2


def _is_sandbox(spec: PlatformSpec) -> bool:
    return spec.platform.environment == SANDBOX_ENV


def resolve_target(
    spec: PlatformSpec, env: str | None, time_scale: float | None, console: Console
) -> tuple[PlatformTarget, float]:
    """The target and the run's time scale; starts the sandbox when it is the target."""
    if not _is_sandbox(spec):
        if time_scale is not None:
            raise SpecError(["--time-scale: applies to the sandbox only (real AWS is 60)"])
        return aws_target(spec.platform.environment, spec.platform.region), REAL_TIME
    if time_scale is not None and time_scale < 0:
        raise SpecError(["--time-scale: must be >= 0"])
    from sandbox import control
    from sandbox.settings import SandboxSettings

    state_dir = control.default_state_dir()
    state = control.running(state_dir)
    if state is None:
        settings = SandboxSettings()
        if time_scale is not None:
            settings.latency.time_scale = time_scale
        _, state = control.up(state_dir, settings)
        console.print(f"sandbox started in {state['startup_seconds']['total']:.2f}s ({state_dir})")
    elif time_scale is not None:
        control.control_call(state, "PUT", "/latency", {"time_scale": time_scale})
    scale = control.control_call(state, "GET", "/status")["time_scale"]
    target = sandbox_target(spec.platform.environment, spec.platform.region, state)
    save_sandbox_secrets(spec)
    return target, scale or SANDBOX_DEFAULT_TIME_SCALE


# The sandbox's DNS provider is not real: its token is a placeholder, not a secret.
SANDBOX_DNS_TOKEN = "sandbox-placeholder-token"


def save_sandbox_secrets(spec: PlatformSpec) -> None:
    """The Secret blocks a sandbox run reads, unless the user saved their own."""
    from prefect.blocks.system import Secret

    name = spec.ingress.external_dns.token_secret_block
    try:
        Secret.load(name, _sync=True)
    except ValueError:
        Secret(value=SANDBOX_DNS_TOKEN).save(name, _sync=True)


def existing_target(spec: PlatformSpec, env: str | None) -> PlatformTarget:
    """The target as it is; a sandbox that is not running is an error, not started."""
    if not _is_sandbox(spec):
        return aws_target(spec.platform.environment, spec.platform.region)
    from sandbox import control

    state = control.running(control.default_state_dir())
    if state is None:
        raise SpecError(["--env sandbox: no sandbox running (platformctl sandbox up)"])
    return sandbox_target(spec.platform.environment, spec.platform.region, state)
