"""The console's report page: what it shows, the finding's consequence, moves and reveals.

The real application on a test server, real Redis, both databases; the dossier's story
arrives through signed events, as in production.
"""

# The console fixture is imported from the console's tests, so test arguments named after it
# shadow the import by design.

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gateway.domain.calendar import DEFAULT_OVERRIDES_FILE, WorkingCalendar, load_overrides
from gateway.storage import reports as report_store
from gateway.storage.tables import chat_messages, violations
from tests.console_helpers import (
    CSRF_RE,
    FRIDAY,
    MASKED,
    PHONE,
    Console,
    citizen_report,
    post_events,
)
from tests.helpers import event

FINISHED = "000.00.12.H19-260401-0042"


async def finished_report(console: Console) -> report_store.ReportRow:
    """A dossier received and marked finished by Bình, and a citizen's report about it."""
    dates = {"received_at": "2026-04-01T08:00:00+07:00", "due_at": "2026-12-30T17:00:00+07:00"}
    await post_events(
        console,
        event("dossier.received", code=FINISHED, at="2026-04-01T08:00:00+07:00", **dates),
        event("dossier.finished", code=FINISHED, at="2026-04-10T15:00:00+07:00", **dates),
    )
    report = await citizen_report(
        console, code=FINISHED, description="Tôi chưa nhận được giấy phép, gọi 0912345678"
    )
    async with console.db.writer.begin() as conn:
        await conn.execute(
            chat_messages.insert().values(
                user_id="u-1",
                direction="in",
                text="Cán bộ ơi, tôi vẫn chưa có giấy phép",
                report_id=report.id,
                created_at=FRIDAY,
            )
        )
    return report


async def page_text(console: Console, report_id: int) -> str:
    response = await console.client.get(f"/console/reports/{report_id}", allow_redirects=False)
    assert response.status == 200, await response.text()
    return await response.text()


async def token_of(console: Console, report_id: int) -> str:
    found = CSRF_RE.search(await page_text(console, report_id))
    assert found is not None
    return found.group(1)


async def test_the_page_shows_the_words_messages_timeline_and_notices(console: Console) -> None:
    report = await finished_report(console)
    await console.logged_in("hoa")
    text = await page_text(console, report.id)
    assert report.number in text
    assert "Tôi chưa nhận được giấy phép" in text
    assert "Cán bộ ơi, tôi vẫn chưa có giấy phép" in text
    assert "<strong>Người dân</strong>" in text  # the message's author, in Vietnamese
    # The timeline in order, in local time; the closing officer named.
    received = text.index("01/04/2026 08:00: Tiếp nhận hồ sơ")
    assert received < text.index("10/04/2026 15:00: Có kết quả (báo kết thúc)")
    assert "Trần Thị Bình (cc-0123)" in text
    assert 'data-testid="report-notices"' in text
    assert "Tiếp nhận phản ánh" in text
    # Masked by default, in the fields and in the citizen's words, even for the hotline.
    assert PHONE not in text
    assert "0912345678" not in text
    assert MASKED in text


async def test_the_queue_links_each_report_to_its_page(console: Console) -> None:
    report = await finished_report(console)
    await console.logged_in("hoa")
    response = await console.client.get("/console/reports")
    assert f'href="/console/reports/{report.id}"' in await response.text()


async def test_earlier_reports_on_the_dossier_are_listed(console: Console) -> None:
    first = await finished_report(console)
    second, _ = await report_store.create_report(
        console.db.writer,
        kind="problem",
        source="phone",
        dossier_code=FINISHED,
        description="Lần thứ hai",
        zalo_user_id=None,
        phone_e164=None,
        calendar=WorkingCalendar(load_overrides(DEFAULT_OVERRIDES_FILE)),
        answer_working_days=5,
        now=FRIDAY,
    )
    await console.logged_in("hoa")
    text = await page_text(console, second.id)
    earlier = text.split('data-testid="earlier"')[1].split("</ul>")[0]
    assert f'<a href="/console/reports/{first.id}">{first.number}</a>' in earlier
    assert second.number not in earlier
    # The first report has none before it.
    assert 'data-testid="earlier"' not in await page_text(console, first.id)


async def test_the_consequence_names_the_officer_and_the_sanction(console: Console) -> None:
    report = await finished_report(console)
    await console.logged_in("hoa")
    text = await page_text(console, report.id)
    assert (
        "Xác nhận sẽ ghi vi phạm 'báo kết thúc sai' cho cán bộ Trần Thị Bình (cc-0123); "
        "đề xuất: khiển trách"
    ) in text


async def test_without_a_closing_event_nobody_is_named(console: Console) -> None:
    report = await citizen_report(console)  # its dossier has no events
    await console.logged_in("hoa")
    text = await page_text(console, report.id)
    assert "chưa xác định được cán bộ" in text
    assert "Xác nhận sẽ ghi vi phạm" not in text


async def test_confirming_records_the_violation_and_an_audit_entry(console: Console) -> None:
    report = await finished_report(console)
    await console.logged_in("hoa")
    token = await token_of(console, report.id)
    response = await console.client.post(
        f"/console/reports/{report.id}/transitions",
        data={
            "csrf_token": token,
            "to": "resolved",
            "note": "Đã xác minh với Sở",
            "finding": "confirmed",
        },
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/console/reports/{report.id}"
    text = await page_text(console, report.id)
    assert "Đã lưu thay đổi trạng thái phản ánh." in text
    assert "Xác nhận báo kết thúc sai" in text
    # Who moved it, by name; the flash is shown once.
    again = await page_text(console, report.id)
    assert "Mới (người dân)" in again
    assert "Mới → Đã giải quyết (cán bộ Cán bộ hoa): Đã xác minh với Sở" in again
    assert "Đã lưu thay đổi" not in again
    async with console.db.reader.connect() as conn:
        found = (await conn.execute(sa.select(violations))).mappings().all()
    assert [(v["rule"], v["officer_id"], v["report_id"]) for v in found] == [
        ("false_closure", "cc-0123", report.id)
    ]
    assert found[0]["suggestion"]["sanction"] == "khien_trach"
    moves = [a for a in await console.audit() if a.action == "report_transition"]
    assert [(a.username, a.target, a.detail) for a in moves] == [
        ("hoa", f"report:{report.id}", {"to": "resolved", "finding": "confirmed"})
    ]


async def test_closing_without_a_note_is_refused_with_a_vietnamese_flash(
    console: Console,
) -> None:
    report = await finished_report(console)
    await console.logged_in("hoa")
    token = await token_of(console, report.id)
    response = await console.client.post(
        f"/console/reports/{report.id}/transitions",
        data={"csrf_token": token, "to": "resolved", "note": ""},
    )
    assert response.status == 200
    text = await response.text()
    assert "Cần ghi nội dung trả lời người dân" in text
    stored = await report_store.get_report(console.db.reader, report.id)
    assert stored is not None and stored.report.status == "open"
    assert not [a for a in await console.audit() if a.action == "report_transition"]


@pytest.mark.parametrize("action", ["transitions", "reveal"])
async def test_a_form_without_the_token_is_refused(console: Console, action: str) -> None:
    report = await finished_report(console)
    await console.logged_in("hoa")
    response = await console.client.post(
        f"/console/reports/{report.id}/{action}",
        data={"csrf_token": "forged", "to": "in_progress"},
    )
    assert response.status == 403
    assert "Biểu mẫu đã hết hạn" in await response.text()
    stored = await report_store.get_report(console.db.reader, report.id)
    assert stored is not None and stored.report.status == "open"
    assert not [a for a in await console.audit() if a.action == "reveal_phone"]


@pytest.mark.parametrize("action", ["transitions", "reveal"])
async def test_an_auditor_may_read_but_not_move_or_reveal(console: Console, action: str) -> None:
    report = await finished_report(console)
    await console.logged_in("lan")
    text = await page_text(console, report.id)
    assert "Hiện số điện thoại" not in text
    assert 'data-testid="move"' not in text
    token = await token_of(console, report.id)
    response = await console.client.post(
        f"/console/reports/{report.id}/{action}",
        data={"csrf_token": token, "to": "in_progress"},
    )
    assert response.status == 403
    assert PHONE not in await response.text()
    stored = await report_store.get_report(console.db.reader, report.id)
    assert stored is not None and stored.report.status == "open"


async def test_a_reveal_shows_the_phone_once_and_is_audited(console: Console) -> None:
    report = await finished_report(console)
    await console.logged_in("hoa")
    token = await token_of(console, report.id)
    response = await console.client.post(
        f"/console/reports/{report.id}/reveal", data={"csrf_token": token}
    )
    assert response.status == 200
    text = await response.text()
    assert PHONE in text
    assert "0912345678" in text
    reveals = [a for a in await console.audit() if a.action == "reveal_phone"]
    assert [(a.username, a.target) for a in reveals] == [("hoa", f"report:{report.id}")]
    # The next view masks it again.
    assert PHONE not in await page_text(console, report.id)


async def test_an_unknown_report_is_a_vietnamese_404(console: Console) -> None:
    await console.logged_in("hoa")
    response = await console.client.get("/console/reports/999999")
    assert response.status == 404
    assert "Không tìm thấy trang" in await response.text()
