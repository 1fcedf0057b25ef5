"""User-facing Vietnamese texts, rendered from Jinja2 templates under ``templates/``.

Code never holds a Vietnamese sentence; it picks a template and passes facts.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def _vn_datetime(value: str | datetime | None, zone: tzinfo | None = None) -> str:
    """``17:00 ngày 12/04/2024`` in the gateway's time zone."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if zone is not None:
        moment = moment.astimezone(zone)
    return f"{moment:%H:%M} ngày {moment:%d/%m/%Y}"


def _vn_date(value: str | datetime | None, zone: tzinfo | None = None) -> str:
    """``12/04/2024`` in the gateway's time zone."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if zone is not None:
        moment = moment.astimezone(zone)
    return f"{moment:%d/%m/%Y}"


def _vn_amount(value: int) -> str:
    """``150.000``: thousands separated by dots, as amounts of đồng are written."""
    return f"{value:,}".replace(",", ".")


def _sentence(value: str) -> str:
    """The text ending as a sentence: a full stop added unless it already ends in one."""
    text = value.rstrip().rstrip(",;:")
    return text if text.endswith((".", "!", "?", "…")) else f"{text}."


class Texts:
    """Renders the project's text templates."""

    def __init__(self, directory: Path) -> None:
        self.env = Environment(
            loader=FileSystemLoader(directory),
            undefined=StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text messages (SMS, chat), never HTML
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["vn_datetime"] = _vn_datetime
        self.env.filters["vn_date"] = _vn_date
        self.env.filters["vn_amount"] = _vn_amount
        self.env.filters["sentence"] = _sentence

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context).strip()

    def pause_message(self, answer: dict[str, Any], zone: tzinfo) -> str:
        """The clerk-facing explanation of a pause-check answer."""
        return self.render("api/pause_check.txt.j2", answer=answer, zone=zone)
