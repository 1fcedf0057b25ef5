"""The console's conversations inbox: unread counts, the thread, replies and closing through
the OA (the staff API's own functions), and the privacy rule of docs/privacy.md.

The real application on a test server, real Redis and its queues, both databases; the
handoffs and the citizens' messages are written as the bot writes them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from gateway.storage.staff import add_user
from gateway.storage.tables import chat_messages, handoffs
from tests.console_helpers import CSRF_RE, Console
from tests.staff_helpers import queued_jobs, rows, seed_handoff

CHAT_SEND = "gateway.processes.jobs.chat_send"
# seed_handoff's day: Wednesday 29 April 2026, 09:00 in Vietnam.
OPENED = datetime(2026, 4, 29, 2, 0, tzinfo=UTC)
LATER = datetime(2026, 4, 29, 3, 0, tzinfo=UTC)
DOSSIER = "000.00.12.H19-260401-0001"
FAREWELL = "Cuộc trò chuyện với cán bộ tổng đài đã kết thúc. Cảm ơn ông/bà."
ROW_RE = re.compile(r'data-testid="conversation" data-id="(\d+)"')
UNREAD_RE = re.compile(r'<td data-testid="unread">(.*?)</td>')


async def citizen_says(
    console: Console, handoff_id: int, user_id: str, text: str, at: datetime
) -> None:
    """A citizen's message forwarded to staff, stored and linked as the chat job does."""
    async with console.db.writer.begin() as conn:
        await conn.execute(
            chat_messages.insert().values(
                user_id=user_id,
                direction="in",
                dedupe_key=f"{user_id}-{at.timestamp()}",
                event_name="user_send_text",
                text=text,
                handoff_id=handoff_id,
                handled_at=at,
                created_at=at,
            )
        )
        await conn.execute(
            handoffs.update().where(handoffs.c.id == handoff_id).values(last_message_at=at)
        )


async def get(console: Console, path: str, status: int = 200) -> str:
    response = await console.client.get(path, allow_redirects=False)
    assert response.status == status, await response.text()
    return await response.text()


def unread_of(html: str) -> dict[int, str]:
    """The unread column of the inbox, by handoff id."""
    ids = [int(i) for i in ROW_RE.findall(html)]
    cells = [re.sub(r"<[^>]+>", "", cell) for cell in UNREAD_RE.findall(html)]
    return dict(zip(ids, cells, strict=True))


def total_of(html: str) -> str:
    found = re.search(r'data-testid="total-unread">\((\d+) tin chưa đọc\)', html)
    assert found is not None
    return found.group(1)


async def three_conversations(console: Console) -> tuple[int, int, int]:
    """An open one with two messages (one with a phone number), a later open one about a
    dossier from a citizen without a proven phone, and a closed one."""
    first = await seed_handoff(
        console.db.writer, "u-1", messages=("Tôi muốn gặp cán bộ", "Số tôi là 0912 345 678")
    )
    later = await seed_handoff(console.db.writer, "u-2", phone=None, at=LATER)
    async with console.db.writer.begin() as conn:
        await conn.execute(
            handoffs.update().where(handoffs.c.id == later).values(dossier_code=DOSSIER)
        )
    closed = await seed_handoff(console.db.writer, "u-3", status="closed")
    return first, later, closed


async def test_the_inbox_lists_open_conversations_first_with_unread_counts(
    console: Console,
) -> None:
    first, later, closed = await three_conversations(console)
    await console.logged_in("hoa")

    html = await get(console, "/console/conversations")
    assert [int(i) for i in ROW_RE.findall(html)] == [later, first, closed]
    assert unread_of(html) == {later: "1 tin mới", first: "2 tin mới", closed: "1 tin mới"}
    assert total_of(html) == "3"  # the open ones' only
    assert "Số tôi là 091* *** *78" in html  # the preview, masked
    assert "345" not in html
    assert "+849******78" in html  # the proven phone, masked
    assert f'<a href="/console/dossiers/{DOSSIER}"><code>{DOSSIER}</code></a>' in html
    assert "29/04/2026 10:00" in html and "29/04/2026 09:00" in html

    html = await get(console, "/console/conversations?status=open")
    assert [int(i) for i in ROW_RE.findall(html)] == [later, first]
    html = await get(console, "/console/conversations?status=closed")
    assert [int(i) for i in ROW_RE.findall(html)] == [closed]
    assert "Không thực hiện được" in await get(console, "/console/conversations?status=x", 400)

    # The citizen writes again: the count goes up and the conversation moves to the top.
    await citizen_says(console, first, "u-1", "Cán bộ ơi?", datetime(2026, 4, 29, 4, 0, tzinfo=UTC))
    html = await get(console, "/console/conversations")
    assert [int(i) for i in ROW_RE.findall(html)] == [first, later, closed]
    assert unread_of(html)[first] == "3 tin mới"
    assert total_of(html) == "4"
    assert "<strong>Người dân:</strong> Cán bộ ơi?" in html


async def test_an_empty_inbox_says_so(console: Console) -> None:
    await console.logged_in("minh")
    html = await get(console, "/console/conversations")
    assert "Chưa có người dân nào yêu cầu gặp cán bộ." in html
    assert total_of(html) == "0"


async def test_opening_a_thread_shows_it_masked_marks_it_read_and_is_audited(
    console: Console,
) -> None:
    first, _, _ = await three_conversations(console)
    async with console.db.writer.begin() as conn:
        await conn.execute(
            chat_messages.insert().values(
                user_id="u-1",
                direction="bot",
                text="Cán bộ sẽ trả lời ông/bà sớm.",
                handoff_id=first,
                handled_at=OPENED,
                created_at=OPENED,
            )
        )
    console.clock.at = LATER
    await console.logged_in("hoa")

    html = await get(console, f"/console/conversations/{first}")
    directions = re.findall(r'data-testid="message" data-direction="(\w+)"', html)
    assert directions == ["in", "in", "bot"]
    assert "<strong>Người dân</strong>, 29/04/2026 09:00" in html
    assert "<strong>Trợ lý tự động</strong>" in html
    assert "Số tôi là 091* *** *78" in html and "345" not in html
    assert '<dd data-testid="phone">+849******78</dd>' in html
    assert '<dd data-testid="unread-before">2</dd>' in html
    assert 'for="reply-text"' in html and 'id="reply-text"' in html

    [stored] = await rows(console.db.reader, handoffs, handoffs.c.id == first)
    assert stored["staff_read_at"] == LATER
    reads = [a for a in await console.audit() if a.action == "conversation_read"]
    assert [(a.username, a.target, a.detail) for a in reads] == [
        ("hoa", f"handoff:{first}", {"via": "console", "unread": 2})
    ]
    inbox = await get(console, "/console/conversations")
    assert unread_of(inbox)[first] == "0"
    assert total_of(inbox) == "1"  # the later conversation is still unread

    # A new citizen message is unread again, until the next opening.
    await citizen_says(
        console, first, "u-1", "Còn đó không ạ?", datetime(2026, 4, 29, 3, 5, tzinfo=UTC)
    )
    assert unread_of(await get(console, "/console/conversations"))[first] == "1 tin mới"
    console.clock.at = datetime(2026, 4, 29, 3, 10, tzinfo=UTC)
    await get(console, f"/console/conversations/{first}")
    assert unread_of(await get(console, "/console/conversations"))[first] == "0"
    reads = [a for a in await console.audit() if a.action == "conversation_read"]
    assert [a.detail for a in reads] == [
        {"via": "console", "unread": 2},
        {"via": "console", "unread": 1},
    ]

    assert "Không tìm thấy trang" in await get(console, "/console/conversations/999", 404)


async def reply(console: Console, handoff_id: int, text: str) -> tuple[int, str, str]:
    """Post a reply from the thread's form: status, Location, page."""
    token = CSRF_RE.search(await get(console, f"/console/conversations/{handoff_id}"))
    assert token is not None
    response = await console.client.post(
        f"/console/conversations/{handoff_id}/replies",
        data={"text": text, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    return response.status, response.headers.get("Location", ""), await response.text()


async def test_a_reply_is_queued_through_the_oa_and_shown_with_its_progress(
    console: Console,
) -> None:
    first = await seed_handoff(console.db.writer, "u-1")
    console.clock.at = LATER
    await console.logged_in("hoa")

    status, location, _ = await reply(console, first, "  Chào anh, em là Hoa.\nAnh cần gì ạ? ")
    assert (status, location) == (303, f"/console/conversations/{first}")
    [sent] = await rows(console.db.reader, chat_messages, chat_messages.c.direction == "staff")
    assert (sent["user_id"], sent["handoff_id"], sent["handled_at"]) == ("u-1", first, None)
    assert sent["text"] == "Chào anh, em là Hoa.\nAnh cần gì ạ?"
    assert queued_jobs(console.settings)["chat"] == [(CHAT_SEND, ([sent["id"]],))]
    replies = [a for a in await console.audit() if a.action == "conversation_reply"]
    assert [(a.username, a.target, a.detail) for a in replies] == [
        ("hoa", f"handoff:{first}", {"message": sent["id"]})
    ]

    html = await get(console, location)
    assert "Đã đưa câu trả lời vào hàng đợi gửi qua Zalo OA." in html
    assert "<strong>Cán bộ (Cán bộ hoa)</strong>, 29/04/2026 10:00" in html
    assert '<span class="msg-sending-queued" data-testid="sending">Đang chờ gửi</span>' in html
    assert "Đã đưa câu trả lời" not in await get(console, location)  # the flash shows once

    # The chat job sends it (claims it, then records Zalo's id or the error).
    async with console.db.writer.begin() as conn:
        await conn.execute(
            chat_messages.update()
            .where(chat_messages.c.id == sent["id"])
            .values(handled_at=LATER, dedupe_key="oa:m-1")
        )
    assert ">Đã gửi</span>" in await get(console, location)
    async with console.db.writer.begin() as conn:
        await conn.execute(
            chat_messages.update()
            .where(chat_messages.c.id == sent["id"])
            .values(dedupe_key=None, payload={"error": "user blocked the OA"})
        )
    assert ">Gửi không thành công</span>" in await get(console, location)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   ", "Vui lòng nhập nội dung trả lời."),
        ("x" * 2001, "Nội dung trả lời dài quá 2000 ký tự; vui lòng rút gọn."),
    ],
)
async def test_an_empty_or_long_reply_is_refused_and_nothing_queued(
    console: Console, text: str, message: str
) -> None:
    first = await seed_handoff(console.db.writer, "u-1")
    await console.logged_in("hoa")
    status, _, html = await reply(console, first, text)
    assert status == 400
    assert (
        f'<p role="alert" id="reply-error" class="error" data-testid="error">{message}</p>' in html
    )
    assert 'aria-invalid="true"' in html
    assert f">{text}</textarea>" in html  # what was typed is kept
    assert await rows(console.db.reader, chat_messages, chat_messages.c.direction == "staff") == []
    assert queued_jobs(console.settings)["chat"] == []
    assert not [a for a in await console.audit() if a.action == "conversation_reply"]


async def test_closing_tells_the_citizen_and_ends_the_replies(console: Console) -> None:
    first = await seed_handoff(console.db.writer, "u-1")
    console.clock.at = LATER
    await console.logged_in("minh")
    html = await get(console, f"/console/conversations/{first}")
    assert f'<q data-testid="farewell">{FAREWELL}</q>' in html
    token = CSRF_RE.search(html)
    assert token is not None
    form = {"csrf_token": token.group(1)}

    response = await console.client.post(
        f"/console/conversations/{first}/close", data=form, allow_redirects=False
    )
    assert response.status == 303
    [stored] = await rows(console.db.reader, handoffs, handoffs.c.id == first)
    assert (stored["status"], stored["closed_at"]) == ("closed", LATER)
    [farewell] = await rows(console.db.reader, chat_messages, chat_messages.c.direction == "staff")
    assert (farewell["text"], farewell["handled_at"]) == (FAREWELL, None)
    assert queued_jobs(console.settings)["chat"] == [(CHAT_SEND, ([farewell["id"]],))]
    closes = [a for a in await console.audit() if a.action == "conversation_close"]
    assert [(a.username, a.target, a.detail) for a in closes] == [
        ("minh", f"handoff:{first}", {"farewell_queued": True})
    ]

    html = await get(console, response.headers["Location"])
    assert "Đã kết thúc hội thoại và báo cho người dân." in html
    assert 'data-testid="closed-note"' in html and 'id="reply-text"' not in html
    assert "<dt>Kết thúc</dt><dd>29/04/2026 10:00</dd>" in html

    # Closing again tells nobody anything; replying to a closed conversation is refused.
    response = await console.client.post(
        f"/console/conversations/{first}/close", data=form, allow_redirects=False
    )
    assert response.status == 303
    assert "Hội thoại này đã kết thúc từ trước." in await get(console, response.headers["Location"])
    response = await console.client.post(
        f"/console/conversations/{first}/replies",
        data=form | {"text": "Chào anh"},
        allow_redirects=False,
    )
    assert response.status == 409
    assert "không gửi được câu trả lời" in await response.text()
    assert (
        len(await rows(console.db.reader, chat_messages, chat_messages.c.direction == "staff")) == 1
    )
    assert len(queued_jobs(console.settings)["chat"]) == 1
    assert len([a for a in await console.audit() if a.action == "conversation_close"]) == 1
    html = await get(console, "/console/conversations?status=closed")
    assert [int(i) for i in ROW_RE.findall(html)] == [first]


async def test_unknown_conversations_are_not_found(console: Console) -> None:
    await console.logged_in("hoa")
    token = CSRF_RE.search(await get(console, "/console/conversations"))
    assert token is not None
    for action in ("replies", "close"):
        response = await console.client.post(
            f"/console/conversations/7/{action}",
            data={"csrf_token": token.group(1), "text": "Chào anh"},
            allow_redirects=False,
        )
        assert response.status == 404, action
    assert await rows(console.db.reader, chat_messages) == []


# --- the privacy rule (docs/privacy.md) ----------------------------------------------------


async def test_auditors_cannot_read_or_touch_any_conversation(console: Console) -> None:
    first = await seed_handoff(console.db.writer, "u-1")
    await console.logged_in("lan")
    reports = await get(console, "/console/reports")
    assert "/console/conversations" not in reports  # not even offered
    token = CSRF_RE.search(reports)
    assert token is not None
    for path in ("/console/conversations", f"/console/conversations/{first}"):
        assert "Không có quyền" in await get(console, path, 403)
    for action in ("replies", "close"):
        response = await console.client.post(
            f"/console/conversations/{first}/{action}",
            data={"csrf_token": token.group(1), "text": "Chào anh"},
            allow_redirects=False,
        )
        assert response.status == 403, action
    [stored] = await rows(console.db.reader, handoffs)
    assert (stored["status"], stored["staff_read_at"]) == ("open", None)
    assert [m["direction"] for m in await rows(console.db.reader, chat_messages)] == ["in"]
    assert queued_jobs(console.settings)["chat"] == []
    assert not [a for a in await console.audit() if a.action.startswith("conversation")]


@pytest.mark.parametrize("username", ["hoa", "minh"])
async def test_hotline_and_admins_read_with_every_opening_logged_and_phones_masked(
    console: Console, username: str
) -> None:
    first = await seed_handoff(
        console.db.writer, "u-1", messages=("Gọi tôi: 0912345678 hoặc +84 987 654 321",)
    )
    await console.logged_in(username)
    for _ in range(2):
        html = await get(console, f"/console/conversations/{first}")
        assert "Gọi tôi: 091*****78 hoặc +84 9** *** *21" in html
        assert "0912345678" not in html and "654" not in html and "345" not in html
    inbox = await get(console, "/console/conversations")
    assert "0912345678" not in inbox and "654" not in inbox
    reads = [a for a in await console.audit() if a.action == "conversation_read"]
    assert [(a.username, a.target) for a in reads] == [(username, f"handoff:{first}")] * 2


async def test_the_inbox_counts_only_citizen_messages_as_unread(console: Console) -> None:
    first = await seed_handoff(console.db.writer, "u-1")
    console.clock.at = LATER
    await console.logged_in("hoa")
    await get(console, f"/console/conversations/{first}")
    after = datetime(2026, 4, 29, 3, 30, tzinfo=UTC)
    async with console.db.writer.begin() as conn:
        for direction, staff_id in (("bot", None), ("staff", 1)):
            await conn.execute(
                chat_messages.insert().values(
                    user_id="u-1",
                    direction=direction,
                    text="Đã chuyển tin của ông/bà cho cán bộ.",
                    handoff_id=first,
                    staff_id=staff_id,
                    handled_at=after,
                    created_at=after,
                )
            )
    assert unread_of(await get(console, "/console/conversations"))[first] == "0"
    await citizen_says(console, first, "u-1", "Dạ", datetime(2026, 4, 29, 3, 40, tzinfo=UTC))
    assert unread_of(await get(console, "/console/conversations"))[first] == "1 tin mới"


async def test_reading_a_conversation_through_the_staff_api_is_logged_too(
    console: Console,
) -> None:
    first = await seed_handoff(console.db.writer, "u-1")
    tokens = {
        role: await add_user(console.db.writer, f"api-{role}", "Kịch bản", role, OPENED)
        for role in ("hotline", "auditor")
    }
    for role, status in (("hotline", 200), ("auditor", 403)):
        response = await console.client.get(
            f"/v1/handoffs/{first}", headers={"Authorization": f"Bearer {tokens[role]}"}
        )
        assert response.status == status, role
    reads = [a for a in await console.audit() if a.action == "conversation_read"]
    assert [(a.username, a.target, a.detail) for a in reads] == [
        ("api-hotline", f"handoff:{first}", {"via": "api"})
    ]
    [stored] = await rows(console.db.reader, handoffs)
    assert stored["staff_read_at"] is None  # a script reading does not clear the inbox
