"""The delivery and chat rigs' fixtures, for the one-time code delivery tests."""

from __future__ import annotations

from tests.chat.conftest import chat_settings
from tests.delivery.conftest import sms_settings

__all__ = ["chat_settings", "sms_settings"]
