"""A citizen's phone number appears on the console only after an audited reveal.

Each role walks every console page it can reach by following links from its landing page
(and the dossier search), downloads included, with a report, a dossier, a conversation
and a failed notice all carrying the citizen's number, in fields and inside texts. No
page may show the number in any usual layout. Then a reveal shows it, once, and the staff
audit log names who asked. A page added later is walked too, without editing this file.
"""

from __future__ import annotations

import html
import re
from collections import deque

import pytest
import sqlalchemy as sa

from gateway.storage.tables import notices
from tests.console_helpers import CODE, PHONE, Console, citizen_report
from tests.staff_helpers import seed_handoff

# The number in the layouts a page could show it in (E.164, national, grouped, dotted).
SHOWN = re.compile(r"912[ .]?345[ .]?678")
# A masked number shows at most its last two digits: the last four ("5678") are a proof
# of ownership (``*678`` was the old mask, three digits).
TAIL = re.compile(r"\*[ .]?6[ .]?78(?!\d)|(?<![0-9a-f])5[ .]?6[ .]?78(?!\d)")
LINK = re.compile(r'href="(/console/[^"#]*)')
USERS = {"hotline": "hoa", "auditor": "lan", "admin": "minh"}
# Pages that end the session or are files a browser would not render as text.
SKIP = re.compile(r"^/console/(logout|static/)|\.xlsx(\?|$)")
MAX_PAGES = 400


async def seed(console: Console) -> None:
    report = await citizen_report(console)  # its acknowledgement notice carries the phone
    async with console.db.writer.begin() as conn:
        await conn.execute(
            notices.update()
            .where(notices.c.dossier_code == CODE)
            .values(state="failed", last_error="esms: 99 (thuê bao 0912 345 678 không nhận)")
        )
    await seed_handoff(
        console.db.writer, "u-9", messages=("Gọi lại cho tôi: 0912.345.678 nhé", "Cảm ơn")
    )
    assert report.phone_e164 == PHONE


async def walk(console: Console, start: list[str]) -> dict[str, int]:
    """Every console page reachable from ``start``: path -> status. Fails on a shown phone."""
    seen: dict[str, int] = {}
    todo = deque(start)
    while todo and len(seen) < MAX_PAGES:
        path = todo.popleft()
        if path in seen or SKIP.search(path):
            continue
        response = await console.client.get(path, allow_redirects=False)
        seen[path] = response.status
        body = html.unescape(await response.text(errors="replace"))
        assert not SHOWN.search(body), f"{path} shows the phone: {SHOWN.search(body)}"
        assert not TAIL.search(body), f"{path} shows the phone's end: {TAIL.search(body)}"
        todo.extend(html.unescape(link) for link in LINK.findall(body))
    return seen


@pytest.mark.parametrize("role", sorted(USERS))
async def test_no_console_page_shows_a_phone_before_a_reveal(console: Console, role: str) -> None:
    await seed(console)
    await console.logged_in(USERS[role])
    walked = await walk(console, ["/console/", "/console/reports", f"/console/dossiers?q={CODE}"])
    # The walk reached the pages that hold the number, and many more.
    assert len(walked) >= 12, sorted(walked)
    assert walked["/console/reports/1"] == 200
    assert walked[f"/console/dossiers/{CODE}"] == 200
    if role != "auditor":
        assert walked["/console/notices"] == 200
        assert any(re.fullmatch(r"/console/notices/[0-9a-f]{32}", p) for p in walked)
        assert [p for p in walked if re.fullmatch(r"/console/conversations/\d+", p)]
    else:
        assert walked.get("/console/conversations") in (None, 403)
    assert not [a for a in await console.audit() if a.action == "reveal_phone"]


@pytest.mark.parametrize(
    ("path", "target"),
    [("/console/reports/1/reveal", "report:1"), (f"/console/dossiers/{CODE}/reveal", None)],
)
async def test_a_reveal_shows_the_phone_and_names_who_asked(
    console: Console, path: str, target: str | None
) -> None:
    await seed(console)
    await console.logged_in("lan")  # an auditor may never reveal
    token = await console.csrf("/console/reports")
    refused = await console.client.post(path, data={"csrf_token": token}, allow_redirects=False)
    assert refused.status == 403
    assert not SHOWN.search(await refused.text())
    console.client.session.cookie_jar.clear()
    await console.logged_in("hoa")
    token = await console.csrf("/console/reports")
    shown = await console.client.post(path, data={"csrf_token": token})
    assert shown.status == 200
    assert PHONE in await shown.text()
    reveals = [(a.username, a.target) for a in await console.audit() if a.action == "reveal_phone"]
    assert reveals == [("hoa", target or f"dossier:{CODE}")]
    # The next view is masked again.
    page = await console.client.get(path.removesuffix("/reveal"))
    assert not SHOWN.search(await page.text())
    async with console.db.reader.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(notices))).scalar() == 1
