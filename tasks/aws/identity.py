"""How the platform names and tags what it owns, so it can find it again (and only it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from blueprint.spec import PlatformSpec
from tasks.aws.errors import PermanentAwsError

NAME_TAG = "platform.io/name"
ENVIRONMENT_TAG = "platform.io/environment"
COMPONENT_TAG = "platform.io/component"
PART_TAG = "platform.io/part"  # which one of several, e.g. a subnet's kind and zone


@dataclass(frozen=True)
class Identity:
    platform: str
    environment: str
    cluster: str
    extra_tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: PlatformSpec) -> Identity:
        return cls(
            spec.platform.name,
            spec.platform.environment,
            spec.eks.cluster_name,
            dict(spec.platform.tags),
        )

    @property
    def prefix(self) -> str:
        return f"{self.platform}-{self.environment}"

    def owner_tags(self) -> dict[str, str]:
        return {NAME_TAG: self.platform, ENVIRONMENT_TAG: self.environment}

    def tags(self, component: str, part: str | None = None, **more: str) -> dict[str, str]:
        tags = {**self.extra_tags, **self.owner_tags(), COMPONENT_TAG: component, **more}
        if part:
            tags[PART_TAG] = part
        return tags

    def tag_list(self, component: str, part: str | None = None, **more: str) -> list[dict]:
        return [{"Key": k, "Value": v} for k, v in self.tags(component, part, **more).items()]

    def filters(self, component: str | None = None, part: str | None = None) -> list[dict]:
        """EC2 filters selecting what this platform owns (optionally one component/part)."""
        wanted = self.owner_tags()
        if component:
            wanted[COMPONENT_TAG] = component
        if part:
            wanted[PART_TAG] = part
        return [{"Name": f"tag:{k}", "Values": [v]} for k, v in wanted.items()]

    def owns(self, tags: list[dict] | dict[str, str] | None) -> bool:
        as_dict = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags or []}
        return all(as_dict.get(k) == v for k, v in self.owner_tags().items())

    def claim(self, kind: str, name: str, tags: list[dict] | dict[str, str] | None) -> None:
        """Go on with an existing resource found by its name only if it carries the
        platform's tags; otherwise stop before anything about it changes."""
        if not self.owns(tags):
            raise NotOurs(kind, name, self.owner_tags())


class NotOurs(PermanentAwsError):
    """A resource has the name the platform would give it, but not its ownership tags:
    someone else's, never adopted, changed or deleted."""

    def __init__(self, kind: str, name: str, owner_tags: dict[str, str]):
        wanted = ", ".join(f"{k}={v}" for k, v in owner_tags.items())
        super().__init__(
            f"adopt {kind} {name}",
            "NotOurs",
            f"{kind} {name} exists, not ours: it lacks the tags {wanted}; nothing was "
            "changed. Give the platform other names in the spec, or tag it to hand it over",
        )
        RuntimeError.__init__(self, self.aws_message)  # the sentence alone says it all


def tag_dict(tags: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}
