"""The Prefect automation that answers drift: ``platform-drift-<environment>``.

``revalidate_platform`` emits ``platform.drift.detected`` on the resource
``platform.<environment>`` when it finds drift. The automation reacts to that event of its
environment only: it tells the spec's notification block
(``health_monitoring.drift_notification_block``) which components drifted, and with
``health_monitoring.remediate_on_drift`` it runs ``revalidate_platform/<environment>`` with
``remediate=true``. A remediation run's own event carries ``platform.remediating=true``
and is not answered again, so nothing loops.
"""

from __future__ import annotations

from typing import Any

from prefect import get_client
from prefect.blocks.core import Block
from prefect.events.actions import Action, RunDeployment, SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from blueprint.errors import SpecError
from blueprint.spec import PlatformSpec

EVENT = "platform.drift.detected"
REVALIDATE_FLOW = "revalidate_platform"
SUBJECT = "Platform {{ event.resource['platform.environment'] }}: drift detected"
BODY = (
    "Re-validation found drift in {{ event.resource['platform.environment'] }}: "
    "{{ event.payload.components | join(', ') }} ({{ event.payload.counts }}). "
    "Flow run: {{ event.related | map(attribute='prefect.resource.name') | join(' ') }}"
)


def automation_name(environment: str) -> str:
    return f"platform-drift-{environment}"


def drift_trigger(environment: str) -> EventTrigger:
    return EventTrigger(
        expect={EVENT},
        match={
            "prefect.resource.id": f"platform.{environment}",
            "platform.remediating": "false",
        },
        posture=Posture.Reactive,
        threshold=1,
    )


async def drift_actions(spec: PlatformSpec) -> list[Action]:
    """What the spec asks for on drift; a SpecError when a block or deployment it names
    does not exist."""
    environment = spec.platform.environment
    monitoring = spec.health_monitoring
    actions: list[Action] = []
    if monitoring.drift_notification_block:
        try:
            block = await Block.aload(monitoring.drift_notification_block)
        except (ValueError, KeyError):
            raise SpecError(
                [
                    "health_monitoring.drift_notification_block: no Prefect block "
                    f"{monitoring.drift_notification_block!r}"
                ]
            ) from None
        actions.append(
            SendNotification(block_document_id=block._block_document_id, subject=SUBJECT, body=BODY)
        )
    if monitoring.remediate_on_drift:
        name = f"{REVALIDATE_FLOW}/{environment}"
        async with get_client() as client:
            try:
                deployment = await client.read_deployment_by_name(name)
            except Exception:
                raise SpecError(
                    [f"health_monitoring.remediate_on_drift: no deployment {name!r} (deploy it)"]
                ) from None
        actions.append(
            RunDeployment(
                source="selected",
                deployment_id=deployment.id,
                parameters={"environment": environment, "remediate": True},
            )
        )
    return actions


async def apply(spec: PlatformSpec) -> dict[str, Any]:
    """Create, update or (when the spec asks for nothing) delete the environment's drift
    automation; returns what it did and its actions."""
    environment = spec.platform.environment
    name = automation_name(environment)
    actions = await drift_actions(spec)
    wanted = AutomationCore(
        name=name,
        description=f"Answers drift of the {environment} platform (from revalidate_platform)",
        trigger=drift_trigger(environment),
        actions=actions,
    )
    async with get_client() as client:
        existing = await client.read_automations_by_name(name)
        for extra in existing[1:]:
            await client.delete_automation(extra.id)
        if not actions:
            if existing:
                await client.delete_automation(existing[0].id)
            done = "deleted" if existing else "none needed"
        elif existing:
            await client.update_automation(existing[0].id, wanted)
            done = "updated"
        else:
            await client.create_automation(wanted)
            done = "created"
    return {"automation": name, "done": done, "actions": [a.type for a in actions]}
