"""Local fakes of the external systems, speaking their real wire protocols on loopback.

One module per vendor (``esms.py``, ``speedsms.py``, the ``zalo`` package); what they
share is written once: the SMS centre and its page (``sms.py``), the control endpoints,
counted failure modes and standalone runner (``control.py``), and the HTML scaffolding
of the pages (``page.py``).
"""

from providers.fakes.esms import create_esms_app
from providers.fakes.sms import (
    CENTRE,
    MODES,
    RECEIPT_MODES,
    STATES,
    FakeMessage,
    FakeSmsCentre,
)
from providers.fakes.speedsms import create_speedsms_app

__all__ = [
    "CENTRE",
    "MODES",
    "RECEIPT_MODES",
    "STATES",
    "FakeMessage",
    "FakeSmsCentre",
    "create_esms_app",
    "create_speedsms_app",
]
