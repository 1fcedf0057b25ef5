"""The bot wired to the in-memory port and the real templates: no Redis, database,
worker or fake Zalo. Citizens: the owner of the demo dossier, and a stranger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.ports import BotPolicy, DossierFacts, NoticeFacts
from bot.replies import Reply
from bot.router import Bot
from gateway.texts.templates import Texts
from tests.bot.memory import Chat, MemoryServices, UserRecord

CODE = "000.00.12.H19-240401-0001"
OTHER_CODE = "000.00.12.H19-240401-0002"  # another dossier of the same owner
UNKNOWN_CODE = "000.00.12.H19-240401-0999"  # well formed, no such dossier
OWNER_PHONE = "+84912345678"
STRANGER_PHONE = "+84987654321"
MENU = ["#lookup", "#report", "#subscribe", "#rate", "#human"]
MAX_FAILURES = 5
MAX_CODES = 10
# Facts only the dossier's owner may see.
SECRETS = ("Cấp giấy phép xây dựng", "Sở Xây dựng", "đã tiếp nhận")

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def dossier(code: str = CODE) -> DossierFacts:
    """The demo dossier (or another of the same owner): received, phone ending in 5678."""
    return DossierFacts(
        code=code,
        procedure_name="Cấp giấy phép xây dựng",
        agency_code="000.00.12.H19",
        agency_name="Sở Xây dựng",
        state="received",
        received_at=datetime(2024, 4, 12, 2, 0, tzinfo=UTC),
        due_at=datetime(2024, 4, 26, 10, 0, tzinfo=UTC),
        finished_at=None,
        finished_by_name=None,
        phone_e164=OWNER_PHONE,
        last_step="dossier.received",
        last_step_at=datetime(2024, 4, 12, 2, 0, tzinfo=UTC),
        notices=(NoticeFacts("receipt", "sms", "delivered", datetime(2024, 4, 12, tzinfo=UTC)),),
    )


@pytest.fixture(scope="session")
def texts() -> Texts:
    return Texts(TEMPLATES)


@pytest.fixture
def services() -> MemoryServices:
    memory = MemoryServices(max_failures=MAX_FAILURES)
    for code in (CODE, OTHER_CODE):
        memory.dossiers[code] = dossier(code)
    return memory


@pytest.fixture
def bot(services: MemoryServices, texts: Texts) -> Bot:
    policy = BotPolicy(max_failures=MAX_FAILURES, max_codes=MAX_CODES, hotline="1022")
    return Bot(services, texts, policy, ZoneInfo("Asia/Ho_Chi_Minh"))


@pytest.fixture
def owner(bot: Bot, services: MemoryServices) -> Chat:
    """The dossier's applicant, who has not shared a phone number yet."""
    return Chat(bot, services, "owner")


async def prove_with_code(chat: Chat, code: str = CODE) -> list[Reply]:
    """The citizen asks for a one-time code for the dossier ("Gửi mã xác thực") and types
    the one its phone received; the replies to the code."""
    await chat.tap(f"#otp {code}")
    return await chat.say(chat.services.code_for(OWNER_PHONE))


async def prove_phone(chat: Chat, phone: str = OWNER_PHONE) -> list[Reply]:
    """The citizen shares ``phone`` and types back the code sent to it; the replies."""
    await chat.share(phone)
    return await chat.say(chat.services.code_for(phone))


@pytest.fixture
def verified(bot: Bot, services: MemoryServices) -> Chat:
    """The dossier's applicant, whose Zalo number was proven by a code and is the
    dossier's."""
    services.users["verified"] = UserRecord(follows=True, phone=OWNER_PHONE)
    return Chat(bot, services, "verified")


@pytest.fixture
def stranger(bot: Bot, services: MemoryServices) -> Chat:
    """Another citizen, whose own (proven) number is not the dossier's."""
    services.users["stranger"] = UserRecord(follows=True, phone=STRANGER_PHONE)
    return Chat(bot, services, "stranger")
