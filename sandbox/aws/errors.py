"""AWS error responses in each protocol's wire format, as botocore's parsers expect them.

Throttling uses the codes and statuses the real services answer with, so that botocore's
retry modes classify the error as throttling; ``unavailable`` is the common 503 every
protocol retries as a transient error.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from xml.sax.saxutils import escape

from werkzeug.wrappers import Response

from sandbox.aws.moto_app import ACCOUNT_ID

JSON_TYPES = {
    "json": "application/x-amz-json-1.1",
    "rest-json": "application/json",
}


class AwsError(Exception):
    """An error a handler answers with; rendered in the protocol of the request."""

    def __init__(self, status: int, code: str, message: str, **fields: Any):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields


def throttling(protocol: str, service: str) -> AwsError:
    if protocol == "ec2":
        return AwsError(503, "RequestLimitExceeded", "Request limit exceeded.")
    if protocol == "rest-json":
        return AwsError(429, "ThrottlingException", "Rate exceeded")
    if protocol == "rest-xml" and service == "s3":
        return AwsError(503, "SlowDown", "Please reduce your request rate.")
    if protocol in ("query", "rest-xml"):
        return AwsError(400, "Throttling", "Rate exceeded")
    return AwsError(400, "ThrottlingException", "Rate exceeded")


def denied(protocol: str, operation: str) -> AwsError:
    code = "UnauthorizedOperation" if protocol == "ec2" else "AccessDeniedException"
    if protocol in ("query", "rest-xml"):
        code = "AccessDenied"
    message = (
        f"User: arn:aws:iam::{ACCOUNT_ID}:user/sandbox is not authorized to perform: {operation}"
    )
    return AwsError(403, code, message)


def unavailable() -> AwsError:
    return AwsError(503, "ServiceUnavailable", "Service is unable to handle request.")


def error_response(protocol: str, service: str, error: AwsError) -> Response:
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id}
    if protocol in ("json", "rest-json"):
        body: dict[str, Any] = {"message": error.message, **error.fields}
        if protocol == "json":
            body["__type"] = error.code
        else:
            headers["x-amzn-ErrorType"] = error.code
        return Response(json.dumps(body), error.status, headers, content_type=JSON_TYPES[protocol])
    if protocol == "smithy-rpc-v2-cbor":
        headers["smithy-protocol"] = "rpc-v2-cbor"
        payload = cbor_text_map({"__type": error.code, "message": error.message})
        return Response(payload, error.status, headers, content_type="application/cbor")
    code, message = escape(error.code), escape(error.message)
    if protocol == "ec2":
        xml = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
    elif protocol == "rest-xml" and service == "s3":
        xml = (
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    else:
        kind = "Receiver" if error.status >= 500 else "Sender"
        xml = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
            "</ErrorResponse>"
        )
    body_xml = '<?xml version="1.0" encoding="UTF-8"?>\n' + xml
    return Response(body_xml, error.status, headers, content_type="text/xml")


def cbor_text_map(items: dict[str, str]) -> bytes:
    """CBOR (RFC 8949) encoding of a map of text strings: all an error body needs."""
    out = bytearray(_cbor_head(5, len(items)))
    for key, value in items.items():
        for text in (key, value):
            data = text.encode()
            out += _cbor_head(3, len(data)) + data
    return bytes(out)


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    for extra, size in ((24, 1), (25, 2), (26, 4)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | extra]) + length.to_bytes(size, "big")
    raise ValueError("CBOR item too long for an error body")
