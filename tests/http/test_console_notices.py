"""The console's notices that need a person: the list, one notice, and the checked resend.

The real application on a test server, real Redis, both databases. Notices are written
with the outbox's own insert and then put in the state a delivery run leaves them in
(with the attempt rows it writes), as the delivery tests do not reach ``unknown`` cheaply.
"""

# The console fixture is imported from the console's tests, so test arguments named after it
# shadow the import by design.

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.storage import outbox
from gateway.storage.outbox import GATEWAY_SOURCE, NewNotice
from gateway.storage.tables import deliveries, notices
from tests.console_helpers import CODE, CSRF_RE, FRIDAY, MASKED, PHONE, Console

OTHER_CODE = "000.00.12.H19-260401-0002"


async def a_notice(
    console: Console,
    state: str,
    *,
    kind: str = "invitation",
    code: str = CODE,
    event_id: str = "evt-1",
    last_error: str | None = None,
    attempts: Sequence[Mapping[str, Any]] = (),
    minutes: int = 0,
) -> str:
    """A notice left in ``state`` by delivery, with its attempt rows; returns its id."""
    at = FRIDAY + timedelta(minutes=minutes)
    new = NewNotice(
        kind=kind,
        dossier_code=code,
        source_id=GATEWAY_SOURCE,
        event_id=event_id,
        dedupe_key=f"test:{event_id}:{kind}:{minutes}",
        phone_e164=PHONE,
        params={"dossier_code": code, "pickup": "Bộ phận một cửa"},
    )
    async with console.db.writer.begin() as conn:
        await outbox.insert(conn, new, at)
        await conn.execute(
            notices.update()
            .where(notices.c.id == new.id)
            .values(
                state=state,
                last_error=last_error,
                attempts=len(attempts) or 1,
                channel="sms" if attempts else None,
                provider=attempts[-1]["provider"] if attempts else None,
            )
        )
        for number, attempt in enumerate(attempts):
            await conn.execute(
                deliveries.insert().values(
                    request_id=f"{new.id}-sms-{attempt['provider']}-{number}"[:48],
                    notice_id=new.id,
                    channel="sms",
                    created_at=at,
                    updated_at=at,
                    **attempt,
                )
            )
    return new.id


async def all_notices(console: Console) -> list[dict[str, Any]]:
    async with console.db.reader.connect() as conn:
        rows = await conn.execute(sa.select(notices).order_by(notices.c.created_at))
        return [dict(r._mapping) for r in rows]


async def get(console: Console, path: str, status: int = 200) -> str:
    response = await console.client.get(path, allow_redirects=False)
    text = await response.text()
    assert response.status == status, text
    return text


async def resend(console: Console, notice_id: str, **form: str) -> Any:
    found = CSRF_RE.search(await get(console, f"/console/notices/{notice_id}"))
    assert found is not None
    return await console.client.post(
        f"/console/notices/{notice_id}/resend",
        data={"csrf_token": found.group(1), **form},
        allow_redirects=False,
    )


async def test_the_list_shows_unknown_and_failed_notices_with_their_reasons(
    console: Console,
) -> None:
    unknown = await a_notice(
        console,
        "unknown",
        last_error="esms: no answer before the timeout",
        attempts=[
            {
                "provider": "esms",
                "state": "unknown",
                "error_code": "TIMEOUT",
                "error": "read timeout after 10 s",
            }
        ],
        minutes=1,
    )
    failed = await a_notice(
        console,
        "failed",
        kind="report_resolved",
        code=OTHER_CODE,
        event_id="report-7-12",
        last_error="speedsms: the number does not exist",
        attempts=[
            {"provider": "speedsms", "state": "failed", "error_code": "89", "error": "bad number"}
        ],
        minutes=2,
    )
    delivered = await a_notice(console, "delivered", event_id="evt-2", minutes=3)
    await console.logged_in("hoa")
    text = await get(console, "/console/notices")
    rows = text.split('data-testid="notice-row"')[1:]
    # Newest first; the delivered one is not there.
    assert [re.findall(r"/console/notices/([0-9a-f]{32})", r)[0] for r in rows] == [
        failed,
        unknown,
    ]
    assert delivered not in text
    assert "Gửi lỗi" in rows[0] and "Kết quả xử lý phản ánh" in rows[0]
    assert "speedsms: the number does not exist" in rows[0]
    assert "speedsms: [89] bad number" in rows[0]
    # A report's notice leads to the report; another to the dossier search.
    assert 'href="/console/reports/7"' in rows[0]
    assert "Không rõ kết quả" in rows[1] and "Mời nhận kết quả" in rows[1]
    assert "esms: [TIMEOUT] read timeout after 10 s" in rows[1]
    assert f'href="/console/dossiers?q={CODE}"' in rows[1]
    # Phones masked, always.
    assert MASKED in text and PHONE not in text

    only_failed = await get(console, "/console/notices?state=failed")
    assert failed in only_failed and unknown not in only_failed
    by_kind = await get(console, "/console/notices?kind=invitation")
    assert unknown in by_kind and failed not in by_kind
    assert "Không có tin nào cần xử lý" in await get(console, "/console/notices?kind=fees")
    await get(console, "/console/notices?state=delivered", status=400)


async def test_a_notice_page_shows_its_text_and_every_attempt(console: Console) -> None:
    notice_id = await a_notice(
        console,
        "failed",
        last_error="no channel left",
        attempts=[
            {"provider": "esms", "state": "failed", "error_code": "99", "error": "brandname off"},
            {"provider": "speedsms", "state": "failed", "error_code": "7", "error": "no credit"},
        ],
    )
    await console.logged_in("minh")
    text = await get(console, f"/console/notices/{notice_id}")
    assert text.count('data-testid="delivery"') == 2
    assert "brandname off" in text and "no credit" in text
    assert "Nội dung sẽ gửi (chưa gửi được)" in text
    assert (
        f"Hồ sơ {CODE} của ông/bà đã có kết quả. Mời ông/bà đến nhận tại Bộ phận một cửa."
    ) in text
    assert 'data-testid="resend"' in text
    await get(console, f"/console/notices/{'0' * 32}", status=404)


async def test_a_resend_without_the_checkbox_sends_nothing(console: Console) -> None:
    notice_id = await a_notice(console, "unknown", last_error="esms: lost answer")
    await console.logged_in("hoa")
    response = await resend(console, notice_id)
    assert response.status == 400
    text = await response.text()
    assert "Chưa gửi lại: cần đánh dấu ô xác nhận" in text
    assert "có thể khiến họ nhận hai tin" in text
    assert [n["id"] for n in await all_notices(console)] == [notice_id]
    assert not [a for a in await console.audit() if a.action == "notice_resend"]


async def test_a_checked_resend_makes_one_new_notice_and_an_audit_entry(
    console: Console,
) -> None:
    notice_id = await a_notice(console, "unknown", kind="report_resolved", event_id="report-3-4")
    await console.logged_in("hoa")
    response = await resend(console, notice_id, confirm="yes")
    assert response.status == 303
    assert response.headers["Location"] == f"/console/notices/{notice_id}"
    original, new = await all_notices(console)
    assert original["id"] == notice_id and original["state"] == "unknown"  # untouched
    assert new["id"] != notice_id
    assert new["dedupe_key"] == f"resend:{notice_id}:1"
    assert (new["kind"], new["phone_e164"], new["dossier_code"], new["state"]) == (
        "report_resolved",
        PHONE,
        CODE,
        "created",
    )
    assert new["params"] == {**original["params"], "resend_of": notice_id}
    entries = [a for a in await console.audit() if a.action == "notice_resend"]
    # Whole ids, although a hex id may hold a phone-looking run of digits.
    assert [(a.username, a.target, a.detail) for a in entries] == [
        ("hoa", f"notice:{notice_id}", {"new_id": new["id"]})
    ]
    page = await get(console, f"/console/notices/{notice_id}")
    assert "Đã tạo tin gửi lại" in page
    assert f'href="/console/notices/{new["id"]}"' in page
    assert 'data-testid="resend"' not in page  # no second form while the first is pending
    listed = await get(console, "/console/notices")
    assert "Đã gửi lại" in listed


async def test_a_second_resend_is_refused_while_the_first_may_arrive(console: Console) -> None:
    notice_id = await a_notice(console, "failed", last_error="no channel left")
    await console.logged_in("hoa")
    assert (await resend(console, notice_id, confirm="yes")).status == 303
    again = await console.client.post(
        f"/console/notices/{notice_id}/resend",
        data={"csrf_token": await console.csrf(f"/console/notices/{notice_id}"), "confirm": "yes"},
        allow_redirects=False,
    )
    assert again.status == 409
    assert "Không gửi lại" in await again.text()
    assert len(await all_notices(console)) == 2
    assert len([a for a in await console.audit() if a.action == "notice_resend"]) == 1
    # Once that resend failed too, another may be made, with the next key.
    first = (await all_notices(console))[1]
    async with console.db.writer.begin() as conn:
        await conn.execute(
            notices.update().where(notices.c.id == first["id"]).values(state="failed")
        )
    assert (await resend(console, notice_id, confirm="yes")).status == 303
    keys = sorted(n["dedupe_key"] for n in await all_notices(console))
    assert f"resend:{notice_id}:2" in keys


@pytest.mark.parametrize("state", ["delivered", "sent", "queued"])
async def test_only_unknown_or_failed_notices_are_resent(console: Console, state: str) -> None:
    notice_id = await a_notice(console, state)
    await console.logged_in("minh")
    assert 'data-testid="resend"' not in await get(console, f"/console/notices/{notice_id}")
    response = await console.client.post(
        f"/console/notices/{notice_id}/resend",
        data={"csrf_token": await console.csrf(f"/console/notices/{notice_id}"), "confirm": "yes"},
        allow_redirects=False,
    )
    assert response.status == 409
    assert [n["id"] for n in await all_notices(console)] == [notice_id]


async def test_an_auditor_may_not_see_or_resend_notices(console: Console) -> None:
    notice_id = await a_notice(console, "unknown")
    await console.logged_in("lan")
    for path in ("/console/notices", f"/console/notices/{notice_id}"):
        assert "Không có quyền" in await get(console, path, status=403)
    refused = await console.client.get("/console/notices")
    found = CSRF_RE.search(await refused.text())  # the refusal page's logout form has it
    assert found is not None
    token = found.group(1)
    response = await console.client.post(
        f"/console/notices/{notice_id}/resend", data={"csrf_token": token, "confirm": "yes"}
    )
    assert response.status == 403
    assert [n["id"] for n in await all_notices(console)] == [notice_id]
