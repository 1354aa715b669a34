"""Domain errors: each carries the stable code and HTTP status of the public contract."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An expected failure that renders itself as the contract's error body."""

    code = "internal_error"
    status = 500
    default_message = "Something went wrong on our side; retry once with backoff."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InvalidCredentials(DomainError):
    code, status = "invalid_credentials", 401
    default_message = "Missing or invalid API key and secret."


class KeyRevoked(DomainError):
    code, status = "key_revoked", 401
    default_message = "This API key has been revoked."


class WalletForbidden(DomainError):
    code, status = "wallet_forbidden", 403
    default_message = "This wallet does not belong to the API key's account."


class InsufficientBalance(DomainError):
    code, status = "insufficient_balance", 402
    default_message = "The wallet balance is lower than the total cost; nothing was sent."


class NotFound(DomainError):
    code, status = "not_found", 404
    default_message = "Not found."


class IdempotencyConflict(DomainError):
    code, status = "idempotency_conflict", 409
    default_message = "A request with this Idempotency-Key is still in flight; retry later."


class IdempotencyMismatch(DomainError):
    code, status = "idempotency_mismatch", 422
    default_message = "This Idempotency-Key was already used with a different request body."


class ValidationFailed(DomainError):
    code, status = "validation_failed", 422
    default_message = "The request is invalid."


class RateLimited(DomainError):
    code, status = "rate_limited", 429
    default_message = "Too many requests for this API key; slow down."

    def __init__(self, retry_after: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SendFailed(DomainError):
    code, status = "send_failed", 502
    default_message = "The send could not be queued; the wallet was not charged."


class InternalError(DomainError):
    code, status = "internal_error", 500


class InvalidSignature(DomainError):
    code, status = "invalid_signature", 401
    default_message = "The request's signature does not match its body."
