"""A fake Zalo platform on loopback: OAuth v4, OA ``cs`` messages, ZNS, webhooks, chat page.

``server.py`` speaks Zalo's wire protocol, ``state.py`` holds :class:`FakeZalo` (users,
tokens, templates, sent messages, modes; simulated citizens post signed webhooks from
there), ``controls.py`` is the ``/_fake/*`` control API and ``page.py`` the chat page a
browser opens at ``/``. Run it with ``python -m providers.fakes.zalo --port 9103
--webhook http://127.0.0.1:8080/webhooks/zalo``.
"""

from providers.fakes.zalo.controls import FAKE
from providers.fakes.zalo.server import create_app, settings_lines
from providers.fakes.zalo.state import (
    CONTROL_KEYS,
    MODES,
    RECEIPT_MODES,
    REFRESH_MODES,
    WEBHOOK_MODES,
    ApiCall,
    FakeTemplate,
    FakeUser,
    FakeZalo,
    Refusal,
    SentMessage,
    UserAction,
)

__all__ = [
    "CONTROL_KEYS",
    "FAKE",
    "MODES",
    "RECEIPT_MODES",
    "REFRESH_MODES",
    "WEBHOOK_MODES",
    "ApiCall",
    "FakeTemplate",
    "FakeUser",
    "FakeZalo",
    "Refusal",
    "SentMessage",
    "UserAction",
    "create_app",
    "settings_lines",
]
