"""User-facing Vietnamese texts, rendered from Jinja2 templates under ``templates/``.

Code never holds a Vietnamese sentence; it picks a template and passes facts.

Every template may name the hotline (``{{ hotline }}``, ``CHAT_HOTLINE``) and the OA's
display name (``{{ oa_name }}``, ``OA_NAME``): they are template globals set once, when
the renderer is built (:meth:`Texts.for_settings`), so no call site can forget them and
no template hard-codes a number (Đồng Nai's hotline is 0251.1022, not 1022). A call may
still pass its own ``hotline`` or ``oa_name``; Jinja2 lets the call's value win.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from gateway.settings import DEFAULT_HOTLINE, DEFAULT_OA_NAME

if TYPE_CHECKING:
    from gateway.settings import Settings


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


def citizen_globals(settings: Settings) -> dict[str, str]:
    """What every citizen-facing template may name, from the settings: the hotline and
    the OA's name. Any other Jinja2 environment rendering citizen texts (web pages) adds
    these to its ``globals`` so it says the same as the SMS and the OA."""
    return {"hotline": settings.chat.hotline, "oa_name": settings.chat.oa_name}


class Texts:
    """Renders the project's text templates, with the hotline and the OA's name as
    globals (``DEFAULT_HOTLINE`` and ``DEFAULT_OA_NAME`` unless given)."""

    def __init__(
        self,
        directory: Path,
        *,
        hotline: str = DEFAULT_HOTLINE,
        oa_name: str = DEFAULT_OA_NAME,
    ) -> None:
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
        self.env.globals.update(hotline=hotline, oa_name=oa_name)

    @classmethod
    def for_settings(cls, settings: Settings) -> Texts:
        """The renderer of ``settings.templates_dir`` with the configured hotline and OA
        name: how the gateway's processes build it."""
        return cls(settings.templates_dir, **citizen_globals(settings))

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context).strip()

    def pause_message(self, answer: dict[str, Any], zone: tzinfo) -> str:
        """The clerk-facing explanation of a pause-check answer."""
        return self.render("api/pause_check.txt.j2", answer=answer, zone=zone)
