"""S3 buckets for Mimir and Loki: private, encrypted, versioned as the spec says, with the
lifecycle rules of the guide's storage optimization."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from blueprint.spec import ObjectStorage, PlatformSpec, bucket_name, object_storage
from tasks.aws.clients import AwsClients
from tasks.aws.errors import (
    AwsError,
    PermanentAwsError,
    TransientAwsError,
    aws_call,
    create_or_adopt,
    passing,
)
from tasks.aws.identity import Identity, tag_dict

COMPONENT = "object-storage"
DELETE_PAGE = 1000  # DeleteObjects takes at most 1000 keys


def lifecycle_rules(storage: ObjectStorage) -> list[dict[str, Any]]:
    rule: dict[str, Any] = {
        "ID": "platform-retention",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Expiration": {"Days": storage.lifecycle.expiration_days},
        "AbortIncompleteMultipartUpload": {
            "DaysAfterInitiation": storage.lifecycle.abort_incomplete_multipart_days
        },
    }
    if storage.lifecycle.transition_to_ia_days:
        rule["Transitions"] = [
            {"Days": storage.lifecycle.transition_to_ia_days, "StorageClass": "STANDARD_IA"}
        ]
    if storage.versioning:
        rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": 7}
    return [rule]


@dataclass
class Bucket:
    name: str
    changes: list[str] = field(default_factory=list)


def _missing(exc: AwsError, *codes: str) -> bool:
    return exc.code in codes


def _exists(s3: Any, name: str) -> bool:
    """HeadBucket: 404 is "no such bucket"; 403 is a bucket of that name in another
    account (S3 names are global), which no retry and no run of ours can change."""
    try:
        with aws_call("s3:HeadBucket"):
            s3.head_bucket(Bucket=name)
    except AwsError as exc:
        if _missing(exc, "404", "NoSuchBucket", "NotFound"):
            return False
        if exc.code in ("403", "AccessDenied", "Forbidden"):
            raise NameTaken(name) from exc
        raise
    return True


class NameTaken(PermanentAwsError):
    def __init__(self, name: str):
        super().__init__(
            "s3:HeadBucket",
            "BucketNameTaken",
            f"bucket {name} belongs to another AWS account (bucket names are global); "
            "set platform.bucket_namespace in the spec to a name of your own",
        )


def _tags(s3: Any, name: str) -> dict[str, str]:
    try:
        with aws_call("s3:GetBucketTagging"):
            return tag_dict(s3.get_bucket_tagging(Bucket=name)["TagSet"])
    except AwsError as exc:
        if not _missing(exc, "NoSuchTagSet"):
            raise
        return {}


def ensure_bucket(spec: PlatformSpec, aws: AwsClients, part: str) -> Bucket:
    """The bucket of ``part`` ("mimir" or "loki"), converged to the spec; a bucket of that
    name the platform does not own stops the run before anything about it changes."""
    s3, me = aws("s3"), Identity.of(spec)
    storage = object_storage(spec, part)
    name = bucket_name(spec, part, aws.account_id())
    wanted_tags = me.tags(COMPONENT, part)
    changes: list[str] = []
    if not _exists(s3, name):
        # Tagged in the create itself: no moment when it exists without its owner's tags.
        config: dict[str, Any] = {"Tags": [{"Key": k, "Value": v} for k, v in wanted_tags.items()]}
        if aws.region != "us-east-1":  # us-east-1 rejects an explicit location constraint
            config["LocationConstraint"] = aws.region
        # BucketAlreadyOwnedByYou: an earlier attempt made it (its tags are checked below);
        # BucketAlreadyExists: another account's, since the name is global.
        created = create_or_adopt(
            "s3:CreateBucket",
            lambda: s3.create_bucket(Bucket=name, CreateBucketConfiguration=config),
            "BucketAlreadyOwnedByYou",
        )
        if created:
            changes.append(f"created bucket {name}")
    tags = _tags(s3, name)
    me.claim("S3 bucket", name, tags)
    if tags != wanted_tags:
        with aws_call("s3:PutBucketTagging"):
            s3.put_bucket_tagging(
                Bucket=name,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in wanted_tags.items()]},
            )
        changes.append("tags")
    _public_access_block(s3, name, changes)
    _encryption(s3, name, changes)
    _versioning(s3, name, storage.versioning, changes)
    _lifecycle(s3, name, lifecycle_rules(storage), changes)
    return Bucket(name, changes)


def _public_access_block(s3: Any, name: str, changes: list[str]) -> None:
    wanted = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    try:
        with aws_call("s3:GetPublicAccessBlock"):
            current = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except AwsError as exc:
        if not _missing(exc, "NoSuchPublicAccessBlockConfiguration"):
            raise
        current = {}
    if current != wanted:
        with aws_call("s3:PutPublicAccessBlock"):
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=wanted)
        changes.append("public access blocked")


def _encryption(s3: Any, name: str, changes: list[str]) -> None:
    wanted = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    try:
        with aws_call("s3:GetBucketEncryption"):
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"][
                "Rules"
            ]
    except AwsError as exc:
        if not _missing(exc, "ServerSideEncryptionConfigurationNotFoundError"):
            raise
        rules = []
    current = [
        {"ApplyServerSideEncryptionByDefault": r.get("ApplyServerSideEncryptionByDefault")}
        for r in rules
    ]
    if current != wanted:
        with aws_call("s3:PutBucketEncryption"):
            s3.put_bucket_encryption(
                Bucket=name, ServerSideEncryptionConfiguration={"Rules": wanted}
            )
        changes.append("encryption")


def _versioning(s3: Any, name: str, enabled: bool, changes: list[str]) -> None:
    with aws_call("s3:GetBucketVersioning"):
        status = s3.get_bucket_versioning(Bucket=name).get("Status")
    wanted = "Enabled" if enabled else None
    if status == wanted or (not enabled and status in (None, "Suspended")):
        return
    with aws_call("s3:PutBucketVersioning"):
        s3.put_bucket_versioning(
            Bucket=name,
            VersioningConfiguration={"Status": "Enabled" if enabled else "Suspended"},
        )
    changes.append(f"versioning {'on' if enabled else 'suspended'}")


def _lifecycle(s3: Any, name: str, rules: list[dict[str, Any]], changes: list[str]) -> None:
    try:
        with aws_call("s3:GetBucketLifecycleConfiguration"):
            current = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    except AwsError as exc:
        if not _missing(exc, "NoSuchLifecycleConfiguration"):
            raise
        current = []
    if _normalized(current) != _normalized(rules):
        with aws_call("s3:PutBucketLifecycleConfiguration"):
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": rules}
            )
        changes.append("lifecycle rules")


def _normalized(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """S3 echoes rules with defaults filled in; compare only what we set."""
    keys = (
        "ID",
        "Status",
        "Expiration",
        "Transitions",
        "AbortIncompleteMultipartUpload",
        "NoncurrentVersionExpiration",
    )
    out = []
    for rule in rules:
        kept = {k: rule[k] for k in keys if rule.get(k)}
        for transition in kept.get("Transitions", []):
            transition.pop("Date", None)
        out.append(kept)
    return sorted(out, key=lambda r: r.get("ID", ""))


def delete_bucket(spec: PlatformSpec, aws: AwsClients, part: str) -> list[str]:
    """Empty (all versions) and delete the bucket of ``part``, if it is the platform's."""
    s3, name = aws("s3"), bucket_name(spec, part, aws.account_id())
    if not _exists(s3, name):
        return []
    Identity.of(spec).claim("S3 bucket", name, _tags(s3, name))
    _empty(s3, name)
    with aws_call("s3:DeleteBucket"):
        s3.delete_bucket(Bucket=name)
    return [f"bucket {name}"]


def _empty(s3: Any, name: str) -> None:
    """Delete every object version and delete marker, a page (up to 1000) at a time, so a
    bucket of any size is emptied in bounded memory. Each round lists from the start again
    (what it deleted is gone). An object S3 did not delete (the answer's per-key ``Errors``)
    fails the step with its code instead of being skipped."""
    pages = s3.get_paginator("list_object_versions").paginate(
        Bucket=name, PaginationConfig={"PageSize": DELETE_PAGE}
    )
    last: list[dict[str, str]] = []
    while True:
        with aws_call("s3:ListObjectVersions"):
            page = next(iter(pages), None) or {}
        batch = [
            {"Key": o["Key"], "VersionId": o["VersionId"]}
            for o in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if not batch:
            return
        if batch == last:  # deleted without an error, yet still there: never loop on it
            raise PermanentAwsError(
                "s3:DeleteObjects", "NotDeleted", f"objects in {name} stay after deletion"
            )
        with aws_call("s3:DeleteObjects"):
            answer = s3.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
        if errors := answer.get("Errors", []):
            code = errors[0].get("Code", "DeleteFailed")
            cls = TransientAwsError if passing(code) else PermanentAwsError
            raise cls(
                "s3:DeleteObjects",
                code,
                f"{len(errors)} of {len(batch)} objects in {name} not deleted, e.g. "
                f"{errors[0].get('Key')}: {errors[0].get('Message')}",
            )
        last = batch
