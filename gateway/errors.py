"""The one exception tree of tthc-gateway.

Domain code raises these; it never knows about HTTP. One middleware
(``gateway.http.problems``) maps them to ``application/problem+json`` answers.

    GatewayError
    ├── ConfigError                 a setting is missing or malformed (names the variable)
    ├── InputError                  the caller sent something we will not accept
    │   ├── MalformedInput          not parseable at all (bad JSON, not UTF-8)
    │   ├── UnsupportedMediaType    wrong Content-Type
    │   ├── PayloadTooLarge         body over the limit
    │   └── ValidationFailed        parseable, but fields are wrong (carries FieldError list)
    ├── AuthenticationFailed        bad/missing signature, unknown source, stale timestamp
    ├── PermissionDenied            authenticated, but the role does not allow it
    ├── NotFound                    the thing asked for does not exist (or is not yours)
    ├── Conflict                    the request contradicts stored state
    │   └── IdempotencyConflict     the same event id arrived with a different body
    ├── StorageUnavailable          the database cannot be reached right now (retry later)
    └── ProviderError               an external service (SMS, Zalo) failed
        ├── TemporaryProviderError  worth retrying later (timeouts, 5xx, throttling)
        │   ├── MaybeSent           sent, but no usable answer: the vendor may have the message
        │   ├── RateLimited         the vendor asked us to slow down (Zalo -32, HTTP 429)
        │   └── TokenRejected       the access token is invalid or expired (refresh, retry once)
        └── PermanentProviderError  retrying with this provider will not help (account, content)
            ├── RecipientUnreachable  no provider will reach this number (blocked, bad format)
            ├── ChannelUnavailable  this recipient cannot get it on this channel: try the next
            │   └── OutsideWindow   Zalo OA: no interaction in the last 7 days (-230, -232)
            ├── TemplateRefused     Zalo refused the ZNS template or its data: re-read the template
            └── TokenRefreshFailed  the OA refresh token was refused: an OA admin must re-consent
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One faulty field: a JSON-pointer-like dotted path and a human reason."""

    field: str
    message: str


class GatewayError(Exception):
    """Root of every error this project raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(GatewayError):
    """A setting is missing or malformed; raised at start-up, names the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


class InputError(GatewayError):
    """The caller sent something we will not accept; nothing was changed."""


class MalformedInput(InputError):
    """The body cannot be parsed at all."""


class UnsupportedMediaType(InputError):
    """The body is not in a media type we read."""


class PayloadTooLarge(InputError):
    """The body is larger than the configured limit."""


class ValidationFailed(InputError):
    """The body parsed, but one or more fields are wrong."""

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        if not errors:
            raise ValueError("ValidationFailed needs at least one FieldError")
        super().__init__(detail or _invalid_fields_detail(errors))
        self.errors = errors


def _invalid_fields_detail(errors: list[FieldError]) -> str:
    """``2 invalid fields: dossier.due_at, actor`` — every field named, each once."""
    fields = list(dict.fromkeys(error.field or "(body)" for error in errors))
    shown = ", ".join(fields[:_FIELDS_IN_DETAIL])
    more = len(fields) - _FIELDS_IN_DETAIL
    if more > 0:
        shown += f" and {more} more"
    noun = "field" if len(fields) == 1 else "fields"
    return f"{len(fields)} invalid {noun}: {shown}"


# Past this many the detail stops naming fields; ``errors`` still lists every one.
_FIELDS_IN_DETAIL = 20


class AuthenticationFailed(GatewayError):
    """The request could not be tied to a known, trusted caller."""

    # The ``WWW-Authenticate`` challenge of the 401: signed requests by default.
    challenge = 'HMAC-SHA256 realm="tthc-gateway"'


class BearerTokenRefused(AuthenticationFailed):
    """A staff API request without a valid personal token."""

    challenge = 'Bearer realm="tthc-gateway"'


class PermissionDenied(GatewayError):
    """The caller is known but its role does not allow this."""


class NotFound(GatewayError):
    """The resource does not exist, or the caller may not know that it does."""


class Conflict(GatewayError):
    """The request contradicts what is already stored."""


class IdempotencyConflict(Conflict):
    """An event id was reused with a different body."""

    def __init__(self, event_id: str) -> None:
        super().__init__(
            f"event {event_id!r} was already accepted with a different body; "
            "use a new id for a new event"
        )
        self.event_id = event_id


class StorageUnavailable(GatewayError):
    """The database cannot be reached; the caller should retry later."""

    def __init__(self, detail: str, retry_after_seconds: int = 5) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class ProviderError(GatewayError):
    """An external delivery service failed."""

    def __init__(self, provider: str, detail: str, code: str | None = None) -> None:
        super().__init__(f"{provider}: {detail}")
        self.provider = provider
        self.code = code


class TemporaryProviderError(ProviderError):
    """Worth retrying later: timeouts, 5xx, throttling."""

    def __init__(
        self,
        provider: str,
        detail: str,
        code: str | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(provider, detail, code)
        self.retry_after_seconds = retry_after_seconds


class PermanentProviderError(ProviderError):
    """Retrying with this provider will not help."""


class RecipientUnreachable(PermanentProviderError):
    """The recipient cannot be reached at this number by any provider: do not fail over."""


class MaybeSent(TemporaryProviderError):
    """The request went out and no usable answer came back (read timeout, connection lost,
    HTTP 504, an unreadable 2xx): the vendor may already have the message, so only a
    vendor that recognises a repeat may be asked again."""

    # Kept on the error for logs and stored attempt rows; decisions use the type.
    CODE = "timeout_after_send"

    def __init__(
        self, provider: str, detail: str, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(provider, detail, self.CODE, retry_after_seconds)


class RateLimited(TemporaryProviderError):
    """The vendor asked us to slow down (Zalo ``-32``, HTTP 429)."""


class TokenRejected(TemporaryProviderError):
    """The access token was refused as invalid or expired: refresh once, retry once."""


class ChannelUnavailable(PermanentProviderError):
    """This recipient cannot be reached on this channel (no Zalo account, not a follower,
    refused this OA's messages): the notice falls back to the next channel."""


class OutsideWindow(ChannelUnavailable):
    """Zalo OA: the user has not interacted in the last 7 days, so ``cs`` is refused."""


class TemplateRefused(PermanentProviderError):
    """Zalo refused the ZNS template or the data filled into it (unknown, disabled or
    changed template): what we know about the template may be out of date."""


class TokenRefreshFailed(PermanentProviderError):
    """The OA refresh token was refused or lost: an OA admin must grant access again."""
