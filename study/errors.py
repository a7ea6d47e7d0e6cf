"""One exception hierarchy for the whole platform; the server maps `code` to an HTTP status."""

from __future__ import annotations


class ArenaError(Exception):
    """Base error: a stable machine-readable `code` plus a message written for a person."""

    code = "arena_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(ArenaError):
    code = "not_found"


class InvalidError(ArenaError):
    code = "invalid"


class DataSourceError(ArenaError):
    """A packaged data carrier could not be fetched, or its bytes do not match the pinned hash."""

    code = "data_source"


class ModelUnavailableError(ArenaError):
    """No copy of a model could be found locally and none may be downloaded."""

    code = "model_unavailable"


class IntegrityError(ArenaError):
    """A file's bytes differ from the hash pinned for it."""

    code = "integrity"


class AuthError(ArenaError):
    """No valid token: missing, unknown, expired or revoked."""

    code = "unauthorized"


class ForbiddenError(ArenaError):
    code = "forbidden"


class ConflictError(ArenaError):
    code = "conflict"


class PayloadTooLargeError(ArenaError):
    code = "payload_too_large"


class QuotaError(ArenaError):
    """Over a budget; `retry_after` says in how many seconds the quota returns (if known)."""

    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PredictionError(InvalidError):
    """A method returned something that is not one probability per test item."""

    code = "invalid_predictions"
