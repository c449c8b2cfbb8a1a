"""S3 as strict as S3 where moto is not: bucket names are global, and tags given in
CreateBucket are kept.

- A bucket name taken by another account (the ``s3-name-taken`` fault, targeting bucket
  names) answers as S3 does to a stranger: HeadBucket 403 with no body, CreateBucket 409
  BucketAlreadyExists, anything else 403 AccessDenied.
- CreateBucket's ``CreateBucketConfiguration/Tags`` (S3 accepts tags at creation) are put on
  the new bucket; moto drops them. A deleted bucket's tags go with it (moto keeps them for
  the next bucket of that name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from xml.etree import ElementTree

from moto.s3.models import s3_backends
from werkzeug.wrappers import Response

from sandbox.aws.errors import AwsError, error_response
from sandbox.aws.moto_app import ACCOUNT_ID, WsgiApp, forward
from sandbox.aws.operations import Operation, request_body
from sandbox.settings import SandboxSettings


class S3Rules:
    def __init__(self, moto_app: WsgiApp, settings: SandboxSettings):
        self._moto = moto_app
        self._settings = settings

    def __call__(
        self, operation: Operation, environ: dict[str, Any], start_response: Callable
    ) -> Iterable[bytes]:
        bucket = operation.uri_params.get("Bucket", "")
        if bucket and self._settings.faults.active("s3-name-taken", bucket):
            return _stranger(operation, bucket)(environ, start_response)
        if operation.name not in ("CreateBucket", "DeleteBucket"):
            return self._moto(environ, start_response)
        tags = _creation_tags(request_body(environ)) if operation.name == "CreateBucket" else {}
        body, succeeded = forward(self._moto, environ, start_response)
        if succeeded:
            backend = s3_backends[ACCOUNT_ID]["global"]
            if operation.name == "CreateBucket" and tags:
                backend.put_bucket_tagging(bucket, tags)
            elif operation.name == "DeleteBucket":
                # moto keeps a deleted bucket's tags; S3 starts a new one of that name bare
                backend.tagger.delete_all_tags_for_resource(f"arn:aws:s3:::{bucket}")
        return body


def _stranger(operation: Operation, bucket: str) -> Response:
    if operation.name == "HeadBucket":
        return Response(status=403)
    if operation.name == "CreateBucket":
        error = AwsError(
            409,
            "BucketAlreadyExists",
            "The requested bucket name is not available. The bucket namespace is shared by "
            "all users of the system. Please select a different name and try again.",
        )
    else:
        error = AwsError(403, "AccessDenied", f"Access Denied to bucket {bucket}")
    return error_response(operation.protocol, operation.service, error)


def _creation_tags(body: bytes) -> dict[str, str]:
    if not body.strip():
        return {}
    root = ElementTree.fromstring(body)
    tags = {}
    for tag in root.iter():
        if tag.tag.rsplit("}", 1)[-1] == "Tag":
            fields = {child.tag.rsplit("}", 1)[-1]: child.text or "" for child in tag}
            tags[fields.get("Key", "")] = fields.get("Value", "")
    return tags
