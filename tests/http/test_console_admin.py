"""The admins' browser of the staff audit log: filters, paging, links, the CSV export,
and that no route changes the log. The real application, both databases."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from aiohttp import ClientResponse

from gateway.http.console import admin
from gateway.storage.staff import record_action
from tests.console_helpers import CODE, CSRF_RE, Console

# Local days in Vietnam (UTC+7): 16:30 UTC is 23:30 on the 24th, 17:30 UTC the 25th.
MONDAY = datetime(2026, 4, 20, 3, 0, tzinfo=UTC)
LATE_FRIDAY = datetime(2026, 4, 24, 16, 30, tzinfo=UTC)
SATURDAY = datetime(2026, 4, 24, 17, 30, tzinfo=UTC)
ROW_RE = re.compile(r'data-testid="entry" data-id="(\d+)" data-action="([a-z_]+)"')


async def seed(console: Console) -> dict[str, int]:
    """A few entries by hoa and lan on several days; their ids by a short name."""
    writer = console.db.writer
    return {
        "reveal": await record_action(
            writer,
            at=MONDAY,
            action="reveal_phone",
            username="hoa",
            staff_id=1,
            target="report:12",
            remote_addr="10.0.0.5",
        ),
        "search": await record_action(
            writer,
            at=LATE_FRIDAY,
            action="dossier_search",
            username="lan",
            staff_id=2,
            target=f"dossier:{CODE}",
            detail={"by": "code", "found": 1},
            remote_addr="10.0.0.6",
        ),
        "read": await record_action(
            writer,
            at=SATURDAY,
            action="conversation_read",
            username="hoa",
            staff_id=1,
            target="handoff:3",
            remote_addr="10.0.0.5",
        ),
    }


async def log_page(console: Console, **query: str) -> ClientResponse:
    return await console.client.get("/console/admin/audit-log", params=query, allow_redirects=False)


def rows(html: str) -> list[tuple[int, str]]:
    return [(int(i), action) for i, action in ROW_RE.findall(html)]


@pytest.mark.parametrize("username", ["hoa", "lan"])
async def test_only_admins_read_the_log(console: Console, username: str) -> None:
    await console.logged_in(username)
    for path in ("/console/admin/audit-log", "/console/admin/audit-log.csv"):
        response = await console.client.get(path, allow_redirects=False)
        assert response.status == 403
        assert "Không có quyền" in await response.text()
    assert [e.action for e in await console.audit()] == ["login"]


async def test_the_log_newest_first_with_names_links_and_details(console: Console) -> None:
    ids = await seed(console)
    await console.logged_in("minh")
    response = await log_page(console)
    assert response.status == 200
    html = await response.text()
    found = rows(html)
    assert found[:4] == [
        (found[0][0], "login"),  # minh's own login, the newest
        (ids["read"], "conversation_read"),
        (ids["search"], "dossier_search"),
        (ids["reveal"], "reveal_phone"),
    ]
    assert "Xem số điện thoại" in html and "Tra cứu hồ sơ" in html
    assert '<a href="/console/reports/12">report:12</a>' in html
    assert f'<a href="/console/dossiers/{CODE}">dossier:{CODE}</a>' in html
    assert "<li>by: code</li><li>found: 1</li>" in html
    assert "20/04/2026 10:00:00" in html and "10.0.0.5" in html
    assert "<caption>Thao tác của cán bộ, mới nhất trước</caption>" in html
    # Reading the log is itself in the log.
    entry = (await console.audit())[-1]
    assert (entry.action, entry.username, entry.detail) == (
        "audit_log_read",
        "minh",
        {"filters": {}, "after": None},
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"username": "hoa"}, ["read", "reveal"]),
        ({"action": "dossier_search"}, ["search"]),
        ({"since": "25/04/2026"}, ["read"]),  # 00:30 on the 25th, local
        ({"since": "2026-04-21", "until": "24/04/2026"}, ["search"]),  # 23:30 on the 24th
        ({"until": "2026-04-20"}, ["reveal"]),
        ({"target": "dossier:"}, ["search"]),
        ({"target": "report:1"}, ["reveal"]),  # contains
        ({"target": "report:1", "match": "exact"}, []),
        ({"target": "report:12", "match": "exact"}, ["reveal"]),
        ({"username": "hoa", "action": "reveal_phone", "since": "20/04/2026"}, ["reveal"]),
    ],
)
async def test_filters_select_entries(
    console: Console, query: dict[str, str], expected: list[str]
) -> None:
    ids = await seed(console)
    await console.logged_in("minh")
    response = await log_page(console, **query)
    assert response.status == 200
    html = await response.text()
    mine = {i for i, _ in rows(html)} & set(ids.values())
    assert mine == {ids[name] for name in expected}
    if not expected:
        assert "Không có thao tác nào khớp bộ lọc." in html
    for value in query.values():
        assert f'value="{value}"' in html  # kept in the form
    entry = (await console.audit())[-1]
    assert entry.action == "audit_log_read" and entry.detail == {"filters": query, "after": None}


async def test_the_action_filter_offers_known_actions_by_name(console: Console) -> None:
    await seed(console)
    await console.logged_in("minh")
    html = await (await log_page(console, action="conversation_read")).text()
    select = html.split('<select id="f-action" name="action">')[1].split("</select>")[0]
    assert '<option value="conversation_read" selected>Đọc hội thoại</option>' in select
    assert '<option value="totp_enabled">Bật xác thực hai bước</option>' in select
    assert '<option value="login">Đăng nhập</option>' in select


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "31/02/2026"}, "Từ ngày"),
        ({"since": "yesterday"}, "Từ ngày"),
        ({"since": "24/04/2026", "until": "23/04/2026"}, "Đến ngày"),
        ({"action": "DROP TABLE"}, "Thao tác"),
        ({"target": "x" * 200}, "Đối tượng"),
        ({"match": "like"}, "Cách so khớp đối tượng"),
    ],
)
async def test_a_bad_filter_is_named(console: Console, query: dict[str, str], field: str) -> None:
    await console.logged_in("minh")
    response = await log_page(console, **query)
    assert response.status == 400
    html = await response.text()
    errors = html.split('data-testid="filter-errors"')[1].split("</p>")[0]
    assert field in errors
    assert 'data-testid="audit-log"' not in html
    export = await console.client.get("/console/admin/audit-log.csv", params=query)
    assert export.status == 400 and export.content_type == "text/html"
    assert [e.action for e in await console.audit()] == ["login"]


async def test_pages_follow_the_cursor_with_the_filters(console: Console) -> None:
    written = [
        await record_action(console.db.writer, at=MONDAY, action="export", username="robot")
        for _ in range(admin.PAGE_SIZE + 10)
    ]
    await console.logged_in("minh")
    first = await (await log_page(console, username="robot")).text()
    found = [i for i, _ in rows(first)]
    assert found == sorted(written, reverse=True)[: admin.PAGE_SIZE]
    link = re.search(r'<a href="([^"]+)" data-testid="next"', first)
    assert link is not None
    following = link.group(1).replace("&amp;", "&")
    assert "username=robot" in following and f"after={found[-1]}" in following
    # Entries written meanwhile (this page's own read) do not shift the next page.
    second = await (await console.client.get("/console/admin/audit-log" + following)).text()
    rest = [i for i, _ in rows(second)]
    assert rest == sorted(written, reverse=True)[admin.PAGE_SIZE :]
    assert 'data-testid="next"' not in second
    assert "← Mới nhất" in second
    reads = [e.detail for e in await console.audit() if e.action == "audit_log_read"]
    assert reads == [
        {"filters": {"username": "robot"}, "after": None},
        {"filters": {"username": "robot"}, "after": found[-1]},
    ]


async def test_the_export_is_the_filtered_log_and_is_audited(console: Console) -> None:
    ids = await seed(console)
    await console.logged_in("minh")
    response = await console.client.get("/console/admin/audit-log.csv", params={"username": "hoa"})
    assert response.status == 200
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="staff-audit-log-20260424-1600'
    )
    body = await response.read()
    assert body.startswith(b"\xef\xbb\xbf")  # a BOM, for Excel
    table = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert table[0] == [
        "Số thứ tự",
        "Thời điểm",
        "Tên đăng nhập",
        "Mã cán bộ",
        "Thao tác",
        "Tên thao tác",
        "Đối tượng",
        "Chi tiết",
        "Địa chỉ máy",
    ]
    assert [row[0] for row in table[1:]] == [str(ids["read"]), str(ids["reveal"])]
    assert table[2][1:7] == [
        "20/04/2026 10:00",
        "hoa",
        "1",
        "reveal_phone",
        "Xem số điện thoại",
        "report:12",
    ]
    entry = (await console.audit())[-1]
    assert (entry.action, entry.target, entry.detail) == (
        "export",
        "staff_audit_log",
        {"format": "csv", "rows": 2, "filters": {"username": "hoa"}},
    )


async def test_no_route_changes_or_deletes_an_entry(console: Console) -> None:
    ids = await seed(console)
    await console.logged_in("minh")
    html = await (await log_page(console)).text()
    token = CSRF_RE.search(html)
    assert token is not None
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/console/admin/audit-log", f"/console/admin/audit-log/{ids['reveal']}"):
            response = await console.client.request(
                method, path, data={"csrf_token": token.group(1)}, allow_redirects=False
            )
            assert response.status in (404, 405), (method, path)
    methods = {route.method for route in admin.routes if "audit-log" in getattr(route, "path", "")}
    assert methods == {"GET"}
    again = await (await log_page(console)).text()
    assert {ids["reveal"], ids["search"], ids["read"]} <= {i for i, _ in rows(again)}
