"""Which target a command acts on, saved as the Prefect blocks a run loads.

A run finds its target in the ``platform-target`` block named after its environment. For
the sandbox, platformctl (which knows both the product and the sandbox) writes those blocks
from the endpoints a running sandbox publishes; for AWS, a block the user saved is used as
it is, and only when there is none a default one (credentials from the default chain) is
saved.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from blocks.target import PlatformTarget, aws_target, sandbox_target
from blueprint.errors import SpecError
from blueprint.spec import PlatformSpec, dns_token_block

SANDBOX_ENV = "sandbox"
# Pace of a sandbox run whose latency profile is off: a 30 s poll becomes 0.1 s.
SANDBOX_DEFAULT_TIME_SCALE = 0.2
# The sandbox's DNS provider is not real: its token is a placeholder, not a secret.
SANDBOX_DNS_TOKEN = "sandbox-placeholder-token"


def is_sandbox(spec: PlatformSpec) -> bool:
    return spec.platform.environment == SANDBOX_ENV


def prepare_target(spec: PlatformSpec, time_scale: float | None, console: Console) -> None:
    """Make the environment's target block ready for a run; starts the sandbox when it is the
    target and none runs."""
    if not is_sandbox(spec):
        if time_scale is not None:
            raise SpecError(["--time-scale: applies to the sandbox only (real AWS is 60)"])
        name = spec.platform.environment
        try:
            PlatformTarget.load(name, _sync=True)
        except ValueError:  # none saved yet: the default one, saved once
            aws_target(name, spec.platform.region).save(name, _sync=True)
        return
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
    save_sandbox_blocks(spec, state)


def save_sandbox_blocks(spec: PlatformSpec, state: dict[str, Any]) -> PlatformTarget:
    """The blocks a sandbox run reads, named after the environment: AWS credentials (a local
    endpoint), the cluster's kubeconfig, the platform target referring to both, and the DNS
    token Secret unless the user saved their own. Overwritten at every sandbox start, since
    its ports change."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.blocks.system import Secret

    from blueprint.loader import load_spec

    name = spec.platform.environment
    target = sandbox_target_of(spec, state)
    # Saved on their own first, so the target refers to them and the UI links them.
    target.aws_credentials.save(name, overwrite=True, _sync=True)
    if target.cluster_config is not None:
        target.cluster_config.save(name, overwrite=True, _sync=True)
    target.save(name, overwrite=True, _sync=True)
    # The placeholder goes only under the name the sandbox's own overlay gives its token
    # block: a block that a site's spec names is that site's to create, and a name shared
    # with another environment would carry the placeholder there. The same for the
    # notification block, whose webhook is the sandbox's own recorder.
    own = load_spec(SANDBOX_ENV)
    token_block = dns_token_block(spec)
    if token_block == dns_token_block(own):
        try:
            Secret.load(token_block, _sync=True)
        except ValueError:
            Secret(value=SANDBOX_DNS_TOKEN).save(token_block, _sync=True)
    alerts = spec.health_monitoring.drift_notification_block
    if alerts and alerts == own.health_monitoring.drift_notification_block:
        webhook = CustomWebhookNotificationBlock(
            name=f"{name} drift",
            url=f"{state['control_url']}/notifications",
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
        )
        webhook.save(alerts.split("/", 1)[1], overwrite=True, _sync=True)
    return target


def sandbox_target_of(spec: PlatformSpec, state: dict[str, Any]) -> PlatformTarget:
    """The target a running sandbox publishes, at its pace (not saved)."""
    from sandbox import control

    scale = control.control_call(state, "GET", "/status")["time_scale"]
    return sandbox_target(
        spec.platform.environment, spec.platform.region, state, scale or SANDBOX_DEFAULT_TIME_SCALE
    )


def existing_target(spec: PlatformSpec) -> PlatformTarget:
    """The environment's target as it is, nothing saved: a sandbox that is not running is an
    error, not started; for AWS the saved block, or else the default one (not yet saved)."""
    name = spec.platform.environment
    if is_sandbox(spec):
        from sandbox import control

        state = control.running(control.default_state_dir())
        if state is None:
            raise SpecError(["--env sandbox: no sandbox running (platformctl sandbox up)"])
        return sandbox_target_of(spec, state)
    try:
        return PlatformTarget.load(name, _sync=True)
    except ValueError:
        return aws_target(name, spec.platform.region)
