"""Media types of the Kubernetes API: what a client accepts and what a body is."""

from __future__ import annotations

from dataclasses import dataclass, field

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@dataclass(frozen=True)
class MediaType:
    essence: str  # "type/subtype", lower case
    params: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        return ";".join([self.essence, *(f"{k}={v}" for k, v in self.params.items())])


def parse_media_type(text: str) -> MediaType:
    essence, *raw = (part.strip() for part in text.split(";"))
    params = {}
    for item in raw:
        key, _, value = item.partition("=")
        if key:
            params[key.strip().lower()] = value.strip().strip('"')
    return MediaType(essence.lower(), params)


def parse_accept(header: str | None) -> list[MediaType]:
    """The accepted media types in the order the client listed them (q-values ignored)."""
    if not header:
        return []
    return [parse_media_type(item) for item in header.split(",") if item.strip()]


def negotiated_kind(accept: list[MediaType], as_kind: str, group: str) -> MediaType | None:
    """The first accepted JSON type asking for ``as_kind`` of ``group`` (e.g. a Table)."""
    for media in accept:
        if (
            media.essence in (JSON, "*/*")
            and media.params.get("as") == as_kind
            and media.params.get("g") == group
        ):
            return media
    return None
