"""AWS errors from a bot service, turned into `BotUnavailable` (no customer text in the message)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from coexist.bots.model import BotUnavailable

# Worth retrying after a pause; anything else (access denied, unknown bot or model, a validation
# error) needs a person to fix the configuration, and the chat a person to answer meanwhile.
TRANSIENT_CODES = frozenset({
    "ThrottlingException",
    "InternalServerException",
    "ServiceUnavailableException",
    "DependencyFailedException",
    "BadGatewayException",
    "ModelTimeoutException",
    "ModelNotReadyException",
    "ConflictException",
})

SERVICE_ERRORS = (ClientError, BotoCoreError)


def unavailable(provider: str, error: Exception) -> BotUnavailable:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "ClientError")
        return BotUnavailable(provider, code, code in TRANSIENT_CODES)
    # Timeouts and connection errors: the service may be back on the next attempt.
    return BotUnavailable(provider, type(error).__name__, True)
