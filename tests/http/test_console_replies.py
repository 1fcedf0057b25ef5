"""Templated replies on the console's report page, and the staff API's ``reply``.

Each move's form comes with the citizen's message pre-filled from the notice's template;
an edited message travels in the notice's params and is what the real renderers make for
Zalo and for SMS; one too long for the SMS budgets is refused with nothing changed. The
real application on a test server, real Redis, both databases.
"""

# The console fixture is imported from the console's tests, so test arguments named after it
# shadow the import by design.

from __future__ import annotations

import html
import re
from typing import Any

import sqlalchemy as sa

from gateway.storage import reports as report_store
from gateway.storage.staff import add_user
from gateway.storage.tables import notices, reports
from gateway.texts.sms import render_sms
from gateway.texts.templates import Texts
from gateway.texts.zalo import render_oa
from tests.console_helpers import CODE, CSRF_RE, FRIDAY, Console, citizen_report

TAIL = "Hỏi đáp: 1022 hoặc Zalo OA Trung tâm Phục vụ hành chính công."
OWN = (
    f"Chào ông/bà, Sở Xây dựng đang kiểm tra lại hồ sơ {CODE}; "
    "chúng tôi sẽ gọi lại trong tuần.\nCảm ơn ông/bà đã phản ánh."
)
OWN_PLAIN = (
    f"Chao ong/ba, So Xay dung dang kiem tra lai ho so {CODE}; "
    "chung toi se goi lai trong tuan. Cam on ong/ba da phan anh."
)


async def page_of(console: Console, report_id: int) -> str:
    response = await console.client.get(f"/console/reports/{report_id}")
    assert response.status == 200, await response.text()
    return await response.text()


def prefilled(text: str, to: str) -> str:
    """The message in the form moving to ``to``, as the browser would submit it."""
    found = re.search(rf'<textarea id="reply-{to}"[^>]*>(.*?)</textarea>', text, re.S)
    assert found is not None, f"no reply form for {to}"
    return html.unescape(found.group(1))


def due(console: Console, report: report_store.ReportRow) -> str:
    assert report.expected_at is not None
    return report.expected_at.astimezone(console.settings.tz).strftime("%d/%m/%Y")


async def move(console: Console, report_id: int, **form: str) -> Any:
    found = CSRF_RE.search(await page_of(console, report_id))
    assert found is not None
    return await console.client.post(
        f"/console/reports/{report_id}/transitions",
        data={"csrf_token": found.group(1), **form},
        allow_redirects=False,
    )


async def notice_rows(console: Console) -> list[dict[str, Any]]:
    async with console.db.reader.connect() as conn:
        rows = await conn.execute(sa.select(notices).order_by(notices.c.created_at))
        return [dict(r._mapping) for r in rows]


def texts_of(console: Console) -> Texts:
    return Texts(console.settings.templates_dir)


async def test_each_move_has_its_form_with_the_templates_message(console: Console) -> None:
    report = await citizen_report(console)
    await console.logged_in("hoa")
    text = await page_of(console, report.id)
    for to in ("in_progress", "resolved", "rejected"):
        assert f'data-testid="move-{to}"' in text
    assert 'data-testid="move-open"' not in text  # a hotline officer cannot reopen
    expected = (
        f"Phản ánh số {report.number} về hồ sơ {CODE} đang được xử lý. "
        f"Dự kiến trả lời trước ngày {due(console, report)}. {TAIL}"
    )
    assert prefilled(text, "in_progress") == expected
    # The SMS renderer with accents and no budget to meet gives the very same text.
    params = {
        "report_number": report.number,
        "dossier_code": CODE,
        "expected_at": report.expected_at.isoformat() if report.expected_at else None,
    }
    sms = render_sms(
        texts_of(console),
        "report_in_progress",
        params,
        accents=True,
        budget=99,
        zone=console.settings.tz,
    )
    assert sms.text == expected
    assert prefilled(text, "resolved") == (
        f"Phản ánh số {report.number} về hồ sơ {CODE} đã được giải quyết. "
        f"Cảm ơn ông/bà đã phản ánh. {TAIL}"
    )
    # The rejection's reason is the note: a placeholder until previewed with it.
    assert f"không được xử lý. Lý do: … {TAIL}" in prefilled(text, "rejected")


async def test_an_edited_reply_is_what_zalo_and_sms_send(console: Console) -> None:
    report = await citizen_report(console)
    await console.logged_in("hoa")
    response = await move(
        console, report.id, to="in_progress", note="Đã chuyển Sở Xây dựng", reply=OWN
    )
    assert response.status == 303, await response.text()
    stored = await report_store.get_report(console.db.reader, report.id)
    assert stored is not None
    assert (stored.report.status, stored.report.status_notes) == (
        "in_progress",
        "Đã chuyển Sở Xây dựng",
    )
    (notice,) = [n for n in await notice_rows(console) if n["kind"] == "report_in_progress"]
    assert notice["params"]["reply_text"] == OWN
    assert notice["params"]["status_note"] == "Đã chuyển Sở Xây dựng"
    zone = console.settings.tz
    oa = render_oa(texts_of(console), notice["kind"], notice["params"], zone)
    assert oa.text == OWN  # verbatim, line break included
    assert oa.buttons  # still with the lookup button
    plain = render_sms(
        texts_of(console), notice["kind"], notice["params"], accents=False, budget=2, zone=zone
    )
    assert (plain.text, plain.encoding, plain.shortened_by) == (OWN_PLAIN, "GSM-7", ())
    accented = render_sms(
        texts_of(console), notice["kind"], notice["params"], accents=True, budget=4, zone=zone
    )
    assert accented.text == " ".join(OWN.split())
    moves = [a for a in await console.audit() if a.action == "report_transition"]
    assert [a.detail for a in moves] == [{"to": "in_progress", "finding": None, "reply": "own"}]


async def test_a_reply_left_as_prefilled_sends_the_template_with_the_note(
    console: Console,
) -> None:
    report = await citizen_report(console)
    await console.logged_in("hoa")
    prefill = prefilled(await page_of(console, report.id), "rejected")
    response = await move(
        console, report.id, to="rejected", note="Hồ sơ đã được trả đúng hẹn", reply=prefill
    )
    assert response.status == 303
    (notice,) = [n for n in await notice_rows(console) if n["kind"] == "report_rejected"]
    assert "reply_text" not in notice["params"]
    sms = render_sms(
        texts_of(console),
        notice["kind"],
        notice["params"],
        accents=True,
        budget=4,
        zone=console.settings.tz,
    )
    assert "Lý do: Hồ sơ đã được trả đúng hẹn." in sms.text
    # An emptied reply means the template too.
    second = await citizen_report(console)
    assert (await move(console, second.id, to="in_progress", reply="  ")).status == 303
    mine = [n for n in await notice_rows(console) if n["kind"] == "report_in_progress"]
    assert [("reply_text" in n["params"]) for n in mine] == [False]


async def test_a_preview_fills_the_message_with_the_note_and_changes_nothing(
    console: Console,
) -> None:
    report = await citizen_report(console)
    await console.logged_in("hoa")
    before = await notice_rows(console)
    response = await move(
        console, report.id, to="rejected", note="Hồ sơ đã được trả đúng hẹn", action="preview"
    )
    assert response.status == 200
    text = await response.text()
    assert prefilled(text, "rejected") == (
        f"Phản ánh số {report.number} về hồ sơ {CODE} không được xử lý. "
        f"Lý do: Hồ sơ đã được trả đúng hẹn. {TAIL}"
    )
    assert '<details class="move" open data-testid="move-rejected">' in text
    assert "Hồ sơ đã được trả đúng hẹn</textarea>" in text  # the note kept in its field
    stored = await report_store.get_report(console.db.reader, report.id)
    assert stored is not None and stored.report.status == "open"
    assert await notice_rows(console) == before
    assert not [a for a in await console.audit() if a.action == "report_transition"]


async def test_a_reply_too_long_for_sms_is_refused_with_nothing_changed(
    console: Console,
) -> None:
    report = await citizen_report(console)
    await console.logged_in("hoa")
    before = await notice_rows(console)
    long_reply = "Cơ quan đang xác minh lại toàn bộ hồ sơ của ông bà. " * 8  # ~420 characters
    response = await move(console, report.id, to="in_progress", reply=long_reply)
    assert response.status == 400
    text = await response.text()
    assert "Tin nhắn quá dài để gửi SMS: không dấu cần 3 tin (tối đa 2)" in text
    assert "có dấu cần 7 tin (tối đa 4)" in text
    assert "chưa lưu thay đổi nào" in text
    assert prefilled(text, "in_progress") == long_reply  # the officer's words are kept
    stored = await report_store.get_report(console.db.reader, report.id)
    assert stored is not None and stored.report.status == "open"
    assert await notice_rows(console) == before
    assert not [a for a in await console.audit() if a.action == "report_transition"]


async def test_the_staff_api_takes_a_reply_too(console: Console) -> None:
    report = await citizen_report(console)
    token = await add_user(console.db.writer, "api", "API", "hotline", FRIDAY)
    headers = {"Authorization": f"Bearer {token}"}
    too_long = await console.client.post(
        f"/v1/reports/{report.id}/transitions",
        json={"to": "in_progress", "reply": "Đang xác minh hồ sơ của ông bà. " * 12},
        headers=headers,
    )
    assert too_long.status == 422
    assert [e["field"] for e in (await too_long.json())["errors"]] == ["reply"]
    async with console.db.reader.connect() as conn:
        status = (
            await conn.execute(sa.select(reports.c.status).where(reports.c.id == report.id))
        ).scalar()
    assert status == "open"
    answer = await console.client.post(
        f"/v1/reports/{report.id}/transitions",
        json={"to": "in_progress", "reply": OWN},
        headers=headers,
    )
    assert answer.status == 200, await answer.text()
    (notice,) = [n for n in await notice_rows(console) if n["kind"] == "report_in_progress"]
    assert notice["params"]["reply_text"] == OWN


async def test_the_page_shows_the_assignee_and_a_dossier_never_seen(console: Console) -> None:
    report = await citizen_report(console)
    await console.logged_in("hoa")
    text = await page_of(console, report.id)
    assert "Chưa giao cho ai" in text
    form = text.split('data-testid="assign"')[1].split("</form>")[0]
    assert 'name="assignee_id" value="me"' in form and 'name="back" value="report"' in form
    async with console.db.writer.begin() as conn:
        minh = (
            await conn.execute(sa.text("SELECT id FROM staff_users WHERE username = 'minh'"))
        ).scalar_one()
        await conn.execute(
            reports.update()
            .where(reports.c.id == report.id)
            .values(assignee_id=minh, dossier_code="000.00.12.H19-991231-9999")
        )
    text = await page_of(console, report.id)
    assert '<dd data-testid="assignee">Cán bộ minh</dd>' in text
    assert "Hồ sơ chưa có trên hệ thống" in text
    assert 'data-testid="dossier-unknown"' in text
