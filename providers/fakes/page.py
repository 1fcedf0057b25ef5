"""The HTML scaffolding of the fakes' pages: one document shape, escaping, times, ids.

Pages are self-contained (inline style and script, no external assets, an empty
favicon so a browser asks for nothing the fake does not serve).
"""

from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

BASE_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330}
header{background:#0068ff;color:#fff;padding:.6rem 1rem}
main{margin:0 auto;padding:1rem}
.muted{color:#667;font-size:.8rem}
"""


def escape(value: object) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def document(title: str, body: str, *, style: str = "", refresh_seconds: int | None = None) -> str:
    """A whole page: ``body`` is trusted HTML, ``title`` is escaped here."""
    refresh = (
        f'<meta http-equiv="refresh" content="{refresh_seconds}">'
        if refresh_seconds is not None
        else ""
    )
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8">{refresh}
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<style>{BASE_STYLE}{style}</style></head>
<body>
{body}
</body></html>
"""


def local_time(moment: datetime, zone: ZoneInfo) -> str:
    """``HH:MM:SS`` in ``zone``, wrapped with the full date and zone in a tooltip."""
    local = moment.astimezone(zone)
    full = f"{local:%Y-%m-%d %H:%M:%S %z} ({zone.key})"
    stamp = escape(local.isoformat())
    return f'<time datetime="{stamp}" title="{escape(full)}">{local:%H:%M:%S}</time>'


def clipped(value: str, *, keep: int = 8) -> str:
    """A long id shown by its first ``keep`` characters; the whole of it in a tooltip."""
    if len(value) <= keep:
        return f'<span class="id">{escape(value)}</span>'
    return f'<span class="id" title="{escape(value)}">{escape(value[:keep])}…</span>'
