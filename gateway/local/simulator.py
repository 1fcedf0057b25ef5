"""A simulated one-stop-shop: realistic dossier life cycles posted as signed events.

Used by ``tthc demo`` (sample traffic a newcomer can watch) and by the benchmarks. The
stories include what the province's letters complain about: missing or landline phone
numbers, pauses during a consultation, a second rescheduling, withdrawals without the
head's approval, and the same event posted twice.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Ho_Chi_Minh")

AGENCIES = (
    ("000.00.12.H19", "Sở Xây dựng"),
    ("000.00.05.H19", "Sở Tài nguyên và Môi trường"),
    ("000.00.08.H19", "Sở Kế hoạch và Đầu tư"),
    ("000.21.30.H19", "UBND huyện Long Thành"),
    ("000.00.15.H19", "Sở Tư pháp"),
)
PROCEDURES = (
    ("1.004227", "Cấp giấy phép xây dựng"),
    ("1.001009", "Đăng ký biến động quyền sử dụng đất"),
    ("2.001199", "Đăng ký thành lập doanh nghiệp tư nhân"),
    ("1.000894", "Cấp phiếu lý lịch tư pháp"),
    ("1.003015", "Cấp đổi giấy chứng nhận quyền sử dụng đất"),
)
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
MIDDLE = ("Văn", "Thị", "Minh", "Ngọc", "Đức", "Thanh", "Hữu", "Thu")
GIVEN = ("An", "Bình", "Châu", "Dũng", "Giang", "Hạnh", "Khoa", "Lan", "Phúc", "Quỳnh", "Sơn")
OFFICERS = (
    ("cc-0123", "Trần Thị Bình"),
    ("cc-0456", "Lê Văn Cường"),
    ("cc-0789", "Phạm Ngọc Diệp"),
)
HEAD = {"id": "ld-0001", "name": "Nguyễn Hữu Đạt"}
PREFIXES = ("091", "098", "097", "090", "093", "086", "088", "070", "056", "059")


@dataclass(frozen=True, slots=True)
class Posting:
    """One event to post (``duplicate`` marks a deliberate re-post of the same body)."""

    body: dict[str, Any]
    duplicate: bool = False


class OneStopShop:
    """Generates dossiers and their events; deterministic for a given seed."""

    def __init__(
        self, seed: int = 1, start: datetime | None = None, first_sequence: int = 0
    ) -> None:
        self.rng = random.Random(seed)
        self.clock = start or datetime(2026, 11, 16, 8, 0, tzinfo=TZ)
        self.sequence = first_sequence

    @classmethod
    def starting_now(cls) -> OneStopShop:
        """A shop whose codes will not collide with an earlier run's on the same database."""
        now = datetime.now(TZ).replace(second=0, microsecond=0)
        seed = int(now.timestamp())
        # Daily sequences are 4 digits; start where an earlier run today is unlikely to be.
        return cls(seed=seed, start=now, first_sequence=random.Random(seed).randrange(9000))

    def _phone(self) -> str:
        r = self.rng.random()
        digits = self.rng.choice(PREFIXES) + f"{self.rng.randrange(10**7):07d}"
        if r < 0.05:
            return ""  # the clerk skipped it
        if r < 0.08:
            return "0251 3822 123"  # a landline
        if r < 0.12:
            return "0163" + digits[3:]  # an 11-digit Viettel number from before 2018
        if r < 0.2:
            return f"SĐT: {digits[:4]}.{digits[4:7]}.{digits[7:]}"
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"

    def dossier(self) -> dict[str, Any]:
        """A fresh dossier snapshot, received now."""
        self.sequence += 1
        agency = self.rng.choice(AGENCIES)
        procedure = self.rng.choice(PROCEDURES)
        received = self.clock
        name = " ".join((self.rng.choice(FAMILY), self.rng.choice(MIDDLE), self.rng.choice(GIVEN)))
        return {
            "code": f"{agency[0]}-{received:%y%m%d}-{self.sequence % 10000:04d}",
            "procedure": {"code": procedure[0], "name": procedure[1]},
            "agency": {"code": agency[0], "name": agency[1]},
            "applicant": {"name": name, "phone": self._phone()},
            "received_at": received.isoformat(),
            "due_at": (received + timedelta(days=self.rng.choice((3, 5, 10)), hours=9)).isoformat(),
        }

    def story(self, dossier: dict[str, Any]) -> Iterator[Posting]:
        """The events of one dossier's life, in the order the one-stop-shop posts them."""
        officer = self.rng.choice(OFFICERS)
        actor = {"id": officer[0], "name": officer[1], "unit": "Bộ phận một cửa"}
        at = datetime.fromisoformat(dossier["received_at"])
        step = 0

        def event(kind: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
            nonlocal at, step
            step += 1
            at += timedelta(hours=self.rng.randint(1, 20), minutes=self.rng.randint(0, 59))
            return {
                "id": f"evt-{dossier['code']}-{step}",
                "type": kind,
                "occurred_at": (
                    dossier["received_at"] if kind == "dossier.received" else at.isoformat()
                ),
                "dossier": dossier,
                "actor": actor,
                "data": data or {},
            }

        yield Posting(event("dossier.received"))
        yield Posting(event("dossier.processing", {"unit": "Phòng Quản lý"}))
        roll = self.rng.random()
        if roll < 0.15:
            consultation = {
                "consultation_id": f"yk-{self.sequence}",
                "agency": {"code": "000.00.05.H19", "name": "Sở Tài nguyên và Môi trường"},
                "due_at": (at + timedelta(days=5)).isoformat(),
            }
            yield Posting(event("dossier.consultation_requested", consultation))
            if self.rng.random() < 0.5:
                yield Posting(event("dossier.paused", {"reason": "Chờ ý kiến Sở Tài nguyên"}))
                yield Posting(event("dossier.resumed"))
            yield Posting(
                event(
                    "dossier.consultation_answered",
                    {"consultation_id": consultation["consultation_id"]},
                )
            )
        elif roll < 0.25:
            yield Posting(
                event(
                    "dossier.supplement_requested",
                    {
                        "reason": "Thiếu bản vẽ thiết kế",
                        "documents": ["Bản vẽ mặt bằng công trình"],
                    },
                )
            )
        elif roll < 0.3:
            yield Posting(
                event("dossier.withdrawn", {"approved_by": HEAD} if self.rng.random() < 0.6 else {})
            )
            return
        if self.rng.random() < 0.2:
            new_due = datetime.fromisoformat(dossier["due_at"]) + timedelta(days=3)
            yield Posting(
                event(
                    "dossier.delayed",
                    {
                        "new_due_at": new_due.isoformat(),
                        "reason": "Chờ xác minh thực địa",
                    },
                )
            )
        finished = event("dossier.finished", {"pickup": "Trung tâm Hành chính công tỉnh, quầy 5"})
        yield Posting(finished)
        if self.rng.random() < 0.1:
            yield Posting(finished, duplicate=True)  # a retry after a lost answer
        yield Posting(event("dossier.delivered"))

    def advance(self, minutes: int = 7) -> None:
        self.clock += timedelta(minutes=minutes)
