"""Staff never see a one-time code: the console's notice list and page show ``••••••``.

The real application on a test server, real Redis, both databases; the code is sent with
:class:`gateway.trust.otp.OneTimeCodes` and its notice left as a failed delivery leaves it.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gateway.storage.tables import notices
from gateway.trust.otp import OneTimeCodes
from tests.console_helpers import FRIDAY, Console

PHONE = "+84987654321"


async def failed_code(console: Console, *, text: bool) -> tuple[str, str]:
    """A code whose notice failed (with the SMS text it was sent as, or never rendered);
    (notice id, code)."""
    codes = OneTimeCodes(console.db.writer, console.settings, lambda: FRIDAY)
    sent = await codes.send_to_phone("zalo:77", PHONE)
    assert sent.notice_id is not None
    async with console.db.writer.begin() as conn:
        params = (
            await conn.execute(sa.select(notices.c.params).where(notices.c.id == sent.notice_id))
        ).scalar_one()
        code = params["otp_code"]
        await conn.execute(
            notices.update()
            .where(notices.c.id == sent.notice_id)
            .values(
                state="failed",
                channel="sms" if text else None,
                last_error="esms: 99 rejected",
                text=f"{code} la ma xac thuc tra cuu ho so" if text else None,
            )
        )
    return sent.notice_id, code


async def page(console: Console, path: str) -> str:
    response = await console.client.get(path, allow_redirects=False)
    body = await response.text()
    assert response.status == 200, body
    return body


@pytest.mark.parametrize("text", [True, False], ids=["sent_text", "never_rendered"])
async def test_the_notice_page_and_list_hide_the_code(console: Console, text: bool) -> None:
    notice_id, code = await failed_code(console, text=text)
    await console.logged_in("hoa")
    shown = await page(console, f"/console/notices/{notice_id}")
    assert "Mã xác thực" in shown  # the kind's name
    assert "•••••• l" in shown  # the text, with the code hidden
    assert code not in shown
    listed = await page(console, "/console/notices?kind=otp")
    assert notice_id in listed and "Mã xác thực" in listed
    assert code not in listed
    # Nothing was changed in storage by looking.
    async with console.db.reader.connect() as conn:
        params = (
            await conn.execute(sa.select(notices.c.params).where(notices.c.id == notice_id))
        ).scalar_one()
    assert params["otp_code"] == code
