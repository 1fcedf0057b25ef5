"""``GET /``: the operators' page saying what runs, with links to look further."""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.http.app import create_app
from gateway.http.ops import PAGE_LINKS
from gateway.settings import Settings


async def test_the_root_page_says_what_runs(settings: Settings, aiohttp_client: Any) -> None:
    client = await aiohttp_client(create_app(settings))
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert f"tthc-gateway {__version__}" in page
    kind = "SQLite" if settings.database_url.startswith("sqlite") else "PostgreSQL"
    assert f"<td>{kind}" in page
    assert "kết nối được" in page and "không kết nối được" not in page
    assert "<th>Zalo OA</th><td>tắt</td>" in page
    assert "<td>log (theo thứ tự dự phòng)</td>" in page
    for path in ("/healthz", "/readyz", "/metrics"):
        assert f'<a href="{path}">' in page
    assert "Trang giả lập" not in page


async def test_the_root_page_links_the_pages_running_beside_it(
    settings: Settings, aiohttp_client: Any
) -> None:
    app = create_app(settings)
    app[PAGE_LINKS] = {"zalo": "http://127.0.0.1:9103/", "other": "http://x/<b>"}
    page = await (await (await aiohttp_client(app)).get("/")).text()
    assert '<a href="http://127.0.0.1:9103/">' in page
    assert "Zalo giả lập: trò chuyện với OA trong vai người dân" in page
    assert "http://x/&lt;b&gt;" in page and "<b>" not in page  # escaped: it is HTML
