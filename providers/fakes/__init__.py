"""Local fakes of the external systems, speaking their real wire protocols on loopback."""

from providers.fakes.sms import (
    CENTRE,
    MODES,
    RECEIPT_MODES,
    FakeMessage,
    FakeSmsCentre,
    create_esms_app,
    create_speedsms_app,
)

__all__ = [
    "CENTRE",
    "MODES",
    "RECEIPT_MODES",
    "FakeMessage",
    "FakeSmsCentre",
    "create_esms_app",
    "create_speedsms_app",
]
