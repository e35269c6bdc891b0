"""The canonical error kinds, and their one mapping to and from gRPC codes.

Servers raise these; `kran.server`'s interceptor turns them into status codes
and the SDK turns codes back into them. Nothing else touches status codes.
"""

from __future__ import annotations

import grpc


class KranError(Exception):
    """Base of every error kran reports to a user."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(KranError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(KranError):
    code = grpc.StatusCode.ALREADY_EXISTS


class InvalidArgument(KranError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(KranError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Conflict(KranError):
    """A write lost a race: the revision it read is no longer current."""

    code = grpc.StatusCode.ABORTED


class Unavailable(KranError):
    code = grpc.StatusCode.UNAVAILABLE


class PermissionDenied(KranError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Internal(KranError):
    code = grpc.StatusCode.INTERNAL


_BY_CODE = {cls.code: cls for cls in (
    NotFound, AlreadyExists, InvalidArgument, FailedPrecondition,
    Conflict, Unavailable, PermissionDenied, Internal,
)}


def from_rpc_error(err: grpc.RpcError) -> KranError:
    """Turn a failed call's status back into the error kind it stands for."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else None
    cls = _BY_CODE.get(code, KranError)
    error = cls(details or code.name.lower().replace("_", " "))
    error.code = code
    return error
