"""How the platform names and tags what it owns, so it can find it again (and only it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from blueprint.spec import PlatformSpec

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


def tag_dict(tags: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}
