"""A simulated one-stop-shop: realistic dossier life cycles posted as signed events.

Used by ``tthc demo`` (sample traffic a newcomer can watch) and by the benchmarks. The
stories include what the province's letters complain about: missing or landline phone
numbers, pauses during a consultation, a second rescheduling, withdrawals without the
head's approval, and the same event posted twice.

Everything happens in office hours (:class:`WorkingCalendar`). A shop built with
``now`` (the demo) places every story in the past, ending before ``now``, so no event
is posted before it happened and no notice announces something still to come. Without
``now`` (benchmarks, tests) stories run forward from ``start``.

The data follows the two-tier local government in force since 1 July 2025: the merged
Đồng Nai province, its departments (Sở) and communes and wards (UBND xã/phường), each
handling the procedures it really handles. Department codes have the QCVN 102:2016 form
``000.00.NN.H19``, communes and wards ``000.NN.30.H19``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.calendar import WorkingCalendar

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PROVINCE_CENTRE = "Trung tâm Phục vụ hành chính công tỉnh Đồng Nai"


@dataclass(frozen=True, slots=True)
class Office:
    """An agency that receives dossiers, and where its results are collected."""

    code: str
    name: str
    pickup: str


def _department(number: int, name: str, counter: int) -> Office:
    return Office(f"000.00.{number:02d}.H19", name, f"{PROVINCE_CENTRE}, quầy {counter}")


def _commune(number: int, name: str) -> Office:
    return Office(f"000.{number:02d}.30.H19", f"UBND {name}", f"Bộ phận Một cửa UBND {name}")


JUSTICE = _department(15, "Sở Tư pháp", 3)
CONSTRUCTION = _department(12, "Sở Xây dựng", 5)
FINANCE = _department(7, "Sở Tài chính", 7)
AGRICULTURE_ENVIRONMENT = _department(5, "Sở Nông nghiệp và Môi trường", 9)
LAND_REGISTRY = Office(
    "000.01.05.H19", "Văn phòng Đăng ký đất đai tỉnh Đồng Nai", f"{PROVINCE_CENTRE}, quầy 10"
)
TRAN_BIEN = _commune(1, "phường Trấn Biên")
BIEN_HOA = _commune(2, "phường Biên Hòa")
LONG_KHANH = _commune(3, "phường Long Khánh")
LONG_THANH = _commune(4, "xã Long Thành")
DONG_XOAI = _commune(5, "phường Đồng Xoài")
BINH_PHUOC = _commune(6, "phường Bình Phước")
COMMUNES = (TRAN_BIEN, BIEN_HOA, LONG_KHANH, LONG_THANH, DONG_XOAI, BINH_PHUOC)


@dataclass(frozen=True, slots=True)
class Procedure:
    """An administrative procedure, the office handling it and its time limit."""

    code: str
    name: str
    office: Office
    unit: str  # the unit that examines the dossier
    days: int  # working days between receipt and the appointment
    missing: str  # what a supplement request asks for


LEGAL_RECORD = Procedure(
    "1.000894",
    "Cấp phiếu lý lịch tư pháp",
    JUSTICE,
    "Phòng Hành chính tư pháp",
    10,
    "Bản chụp căn cước của người được cấp phiếu",
)
BUILDING_PERMIT = Procedure(
    "1.004227",
    "Cấp giấy phép xây dựng công trình",
    CONSTRUCTION,
    "Phòng Quản lý xây dựng",
    15,
    "Bản vẽ thiết kế xây dựng",
)
ENTERPRISE = Procedure(
    "2.001199",
    "Đăng ký thành lập doanh nghiệp tư nhân",
    FINANCE,
    "Phòng Đăng ký kinh doanh",
    3,
    "Giấy đề nghị đăng ký doanh nghiệp có chữ ký của chủ doanh nghiệp",
)
LAND_CHANGE = Procedure(
    "1.001009",
    "Đăng ký biến động quyền sử dụng đất",
    LAND_REGISTRY,
    "Bộ phận Đăng ký và cấp giấy chứng nhận",
    10,
    "Hợp đồng chuyển nhượng có công chứng",
)
LAND_RENEWAL = Procedure(
    "1.003015",
    "Cấp đổi giấy chứng nhận quyền sử dụng đất",
    LAND_REGISTRY,
    "Bộ phận Đăng ký và cấp giấy chứng nhận",
    7,
    "Bản gốc giấy chứng nhận đã cấp",
)


def _local_procedures(office: Office) -> tuple[Procedure, ...]:
    """What a commune or ward handles itself."""
    return (
        Procedure(
            "1.001193",
            "Đăng ký khai sinh",
            office,
            "Công chức Tư pháp - Hộ tịch",
            1,
            "Giấy chứng sinh",
        ),
        Procedure(
            "1.000656",
            "Đăng ký kết hôn",
            office,
            "Công chức Tư pháp - Hộ tịch",
            5,
            "Giấy xác nhận tình trạng hôn nhân",
        ),
        Procedure(
            "2.000720",
            "Đăng ký thành lập hộ kinh doanh",
            office,
            "Phòng Kinh tế",
            3,
            "Bản sao hợp đồng thuê địa điểm kinh doanh",
        ),
        Procedure(
            "1.009994",
            "Cấp giấy phép xây dựng nhà ở riêng lẻ",
            office,
            "Phòng Kinh tế",
            15,
            "Bản vẽ mặt bằng công trình",
        ),
    )


PROCEDURES = (
    LEGAL_RECORD,
    BUILDING_PERMIT,
    ENTERPRISE,
    LAND_CHANGE,
    LAND_RENEWAL,
    *(p for office in COMMUNES for p in _local_procedures(office)),
)
_BY_NAME = {(p.office, p.name): p for p in PROCEDURES}

FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng")
# Middle and given names go by gender: "Thị" with a man's name reads as a mistake.
MEN = (("Văn", "Hữu", "Đức", "Minh", "Quốc"), ("Hùng", "Dũng", "Sơn", "Khoa", "Phúc", "Tuấn"))
WOMEN = (("Thị", "Ngọc", "Thu", "Thanh"), ("Lan", "Hạnh", "Quỳnh", "Hương", "Mai", "Trang"))
OFFICERS = (
    ("cc-0123", "Trần Thị Bình"),
    ("cc-0456", "Lê Văn Cường"),
    ("cc-0789", "Phạm Ngọc Diệp"),
    ("cc-0321", "Đỗ Minh Khang"),
)
HEAD = {"id": "ld-0001", "name": "Nguyễn Hữu Đạt"}
PREFIXES = ("091", "098", "097", "090", "093", "086", "088", "070", "056", "059")
LANDLINE = "0251 3822 123"  # a Đồng Nai landline, as clerks sometimes type


@dataclass(frozen=True, slots=True)
class Posting:
    """One event to post (``duplicate`` marks a deliberate re-post of the same body)."""

    body: dict[str, Any]
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a planned story, ``hours`` of office time after the previous one."""

    kind: str
    hours: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Scripted:
    """A story that always runs in the demo, and what it shows."""

    dossier: dict[str, Any]
    shows: str


@dataclass
class _Plan:
    procedure: Procedure
    officer: tuple[str, str]
    steps: list[Step]


class OneStopShop:
    """Generates dossiers and their events; deterministic for a given seed and clock."""

    def __init__(
        self,
        seed: int = 1,
        start: datetime | None = None,
        first_sequence: int = 0,
        *,
        now: datetime | None = None,
        calendar: WorkingCalendar | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.calendar = calendar or WorkingCalendar()
        self.clock = start or datetime(2026, 11, 16, 8, 0, tzinfo=TZ)
        self.now = now
        self.sequence = first_sequence
        self._plans: dict[str, _Plan] = {}

    @classmethod
    def ending_before(cls, now: datetime, first_sequence: int, seed: int) -> OneStopShop:
        """A shop whose stories all happened before ``now`` (the demo's)."""
        return cls(seed=seed, first_sequence=first_sequence, now=now)

    # -- dossiers ------------------------------------------------------------------------

    def dossier(self) -> dict[str, Any]:
        """A dossier with a random story (see :meth:`story`)."""
        procedure = self.rng.choice(PROCEDURES)
        return self._new(procedure, self._name(), self._phone(), self._random_steps(procedure))

    def scripted(self) -> list[Scripted]:
        """Stories that make every audit rule fire once, and one for the chat citizen.

        The first is the chat citizen's: rescheduled with an apology, then announced as
        finished but not yet collected (what the citizen will report).
        """
        officers = dict(OFFICERS)

        def plan(
            procedure: Procedure, name: str, phone: str, officer: str, steps: list[Step]
        ) -> dict[str, Any]:
            return self._new(procedure, name, phone, steps, (officer, officers[officer]))

        mobile = self._mobile()
        building = _BY_NAME[(LONG_THANH, "Cấp giấy phép xây dựng nhà ở riêng lẻ")]
        return [
            Scripted(
                plan(
                    LEGAL_RECORD,
                    "Nguyễn Thị Lan",
                    mobile,
                    "cc-0123",
                    [
                        Step("dossier.processing", 2),
                        Step("dossier.delayed", 60, {"reason": "Chờ kết quả xác minh"}),
                        Step("dossier.finished", 30),
                    ],
                ),
                "an apology with a new date, then finished: the chat citizen's dossier",
            ),
            Scripted(
                plan(
                    _BY_NAME[(TRAN_BIEN, "Đăng ký kết hôn")],
                    "Trần Văn Hùng",
                    "",
                    "cc-0456",
                    [Step("dossier.processing", 1)],
                ),
                "no phone entered at receipt",
            ),
            Scripted(
                plan(
                    ENTERPRISE,
                    "Lê Thị Hạnh",
                    LANDLINE,
                    "cc-0789",
                    [Step("dossier.processing", 2), Step("dossier.finished", 10)],
                ),
                "a landline entered at receipt",
            ),
            Scripted(
                plan(
                    BUILDING_PERMIT,
                    "Phạm Văn Dũng",
                    self._mobile(),
                    "cc-0321",
                    [
                        Step("dossier.processing", 2),
                        Step("dossier.consultation_requested", 4),
                        Step(
                            "dossier.paused",
                            3,
                            {"reason": "Chờ ý kiến Sở Nông nghiệp và Môi trường"},
                        ),
                        Step("dossier.resumed", 14),
                        Step("dossier.consultation_answered", 2),
                        Step("dossier.finished", 20),
                        Step("dossier.delivered", 6),
                    ],
                ),
                "a pause while a consultation is pending",
            ),
            Scripted(
                plan(
                    LAND_CHANGE,
                    "Hoàng Thị Mai",
                    self._mobile(),
                    "cc-0456",
                    [Step("dossier.processing", 3), Step("dossier.withdrawn", 8)],
                ),
                "a withdrawal without the head's approval",
            ),
            Scripted(
                plan(
                    building,
                    "Võ Minh Tuấn",
                    self._mobile(),
                    "cc-0789",
                    [
                        Step("dossier.processing", 2),
                        Step("dossier.delayed", 40, {"reason": "Chờ kiểm tra hiện trạng"}),
                        Step("dossier.delayed", 40, {"reason": "Chờ bổ sung ý kiến thẩm định"}),
                    ],
                ),
                "a second rescheduling",
            ),
        ]

    def _new(
        self,
        procedure: Procedure,
        name: str,
        phone: str,
        steps: list[Step],
        officer: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        self.sequence += 1
        plan = _Plan(procedure, officer or self.rng.choice(OFFICERS), steps)
        received = self._received_at(sum(s.hours for s in steps))
        office = procedure.office
        code = f"{office.code}-{received:%y%m%d}-{self.sequence % 10000:04d}"
        dossier: dict[str, Any] = {
            "code": code,
            "procedure": {"code": procedure.code, "name": procedure.name},
            "agency": {"code": office.code, "name": office.name},
            "applicant": {"name": name, "phone": phone},
            "received_at": received.isoformat(),
            "due_at": self.calendar.add_working_days(received, procedure.days).isoformat(),
        }
        self._plans[code] = plan
        return dossier

    def _received_at(self, hours: float) -> datetime:
        """When a story of ``hours`` office time starts: at the clock, or early enough."""
        cal = self.calendar
        if self.now is None:
            return _minute(cal.next_working_moment(self.clock))
        latest = self.now - timedelta(minutes=2)
        day = latest.astimezone(TZ).date()
        back = int(hours // 8) + self.rng.randint(0, 2)
        while True:
            candidate = day - timedelta(days=back)
            opening = datetime.combine(candidate, datetime.min.time(), tzinfo=TZ)
            start = _minute(
                cal.add_working_hours(opening, self.rng.uniform(0.2, 3.0))
                if cal.is_working_day(candidate)
                else cal.next_working_moment(opening)
            )
            if cal.add_working_hours(start, hours) <= latest:
                return start
            back += 1

    def _name(self) -> str:
        middles, givens = MEN if self.rng.random() < 0.5 else WOMEN
        return " ".join(
            (self.rng.choice(FAMILY), self.rng.choice(middles), self.rng.choice(givens))
        )

    def _mobile(self) -> str:
        digits = self.rng.choice(PREFIXES) + f"{self.rng.randrange(10**7):07d}"
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"

    def _phone(self) -> str:
        r = self.rng.random()
        digits = self._mobile().replace(" ", "")
        if r < 0.05:
            return ""  # the clerk skipped it
        if r < 0.08:
            return LANDLINE
        if r < 0.12:
            return "0163" + digits[3:]  # an 11-digit Viettel number from before 2018
        if r < 0.2:
            return f"SĐT: {digits[:4]}.{digits[4:7]}.{digits[7:]}"
        return f"{digits[:4]} {digits[4:7]} {digits[7:]}"

    def _random_steps(self, procedure: Procedure) -> list[Step]:
        rng = self.rng
        budget = procedure.days * 8  # office hours until the appointment

        def hours() -> float:
            # Short enough that most dossiers finish before their appointment.
            return round(rng.uniform(0.1, 0.15) * budget + 0.5, 2)

        steps = [Step("dossier.processing", hours())]
        roll = rng.random()
        if roll < 0.15 and procedure.days >= 5:
            steps.append(Step("dossier.consultation_requested", hours()))
            if rng.random() < 0.5:
                reason = "Chờ ý kiến Sở Nông nghiệp và Môi trường"
                steps += [Step("dossier.paused", hours(), {"reason": reason})]
                steps += [Step("dossier.resumed", hours())]
            steps.append(Step("dossier.consultation_answered", hours()))
        elif roll < 0.25:
            steps.append(Step("dossier.supplement_requested", hours()))
        elif roll < 0.3:
            approval = {"approved_by": HEAD} if rng.random() < 0.6 else {}
            return [*steps, Step("dossier.withdrawn", hours(), approval)]
        if rng.random() < 0.2 and procedure.days >= 5:
            steps.append(Step("dossier.delayed", hours(), {"reason": "Chờ xác minh thực địa"}))
        if rng.random() < 0.15:
            return steps  # still being processed
        steps.append(Step("dossier.finished", hours(), duplicate=rng.random() < 0.1))
        if rng.random() < 0.7:
            steps.append(Step("dossier.delivered", hours()))
        return steps

    # -- events --------------------------------------------------------------------------

    def story(self, dossier: dict[str, Any]) -> Iterator[Posting]:
        """The events of one dossier's life, in the order the one-stop-shop posts them.

        Each event carries the dossier as the one-stop-shop then knows it: after an
        apology, the rescheduled due date.
        """
        plan = self._plans[dossier["code"]]
        officer_id, officer_name = plan.officer
        actor = {"id": officer_id, "name": officer_name, "unit": "Bộ phận Một cửa"}
        snapshot = dict(dossier)
        at = datetime.fromisoformat(dossier["received_at"])
        consultation = f"yk-{dossier['code'][-4:]}"
        yield Posting(self._event(dossier, snapshot, actor, 0, "dossier.received", at, {}))
        for number, step in enumerate(plan.steps, start=1):
            at = _minute(self.calendar.add_working_hours(at, step.hours))
            data = self._data(step, plan.procedure, snapshot, at, consultation)
            body = self._event(dossier, snapshot, actor, number, step.kind, at, data)
            yield Posting(body)
            if step.duplicate:
                yield Posting(body, duplicate=True)  # a retry after a lost answer

    def _data(
        self, step: Step, procedure: Procedure, snapshot: dict[str, Any], at: datetime, yk: str
    ) -> dict[str, Any]:
        data = dict(step.data)
        if step.kind == "dossier.processing":
            data.setdefault("unit", procedure.unit)
        elif step.kind == "dossier.consultation_requested":
            agency = AGRICULTURE_ENVIRONMENT
            data |= {
                "consultation_id": yk,
                "agency": {"code": agency.code, "name": agency.name},
                "due_at": self.calendar.add_working_days(at, 5).isoformat(),
            }
        elif step.kind == "dossier.consultation_answered":
            data["consultation_id"] = yk
        elif step.kind == "dossier.supplement_requested":
            data |= {"reason": "Hồ sơ chưa đủ thành phần", "documents": [procedure.missing]}
        elif step.kind == "dossier.delayed":
            due = datetime.fromisoformat(snapshot["due_at"])
            new_due = self.calendar.add_working_days(max(due, at), 3)
            data["new_due_at"] = new_due.isoformat()
            # From now on the one-stop-shop sends the rescheduled date with every event.
            snapshot["due_at"] = new_due.isoformat()
        elif step.kind == "dossier.finished":
            data.setdefault("pickup", procedure.office.pickup)
        return data

    @staticmethod
    def _event(
        dossier: dict[str, Any],
        snapshot: dict[str, Any],
        actor: dict[str, str],
        number: int,
        kind: str,
        at: datetime,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "id": f"evt-{dossier['code']}-{number + 1}",
            "type": kind,
            "occurred_at": at.isoformat(),
            "dossier": dict(snapshot),
            "actor": actor,
            "data": data,
        }

    def advance(self, minutes: int = 7) -> None:
        """Move the clock of the next receipt (stories running forward only)."""
        self.clock += timedelta(minutes=minutes)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)
