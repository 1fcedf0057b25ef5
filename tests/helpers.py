"""Test helpers: signed requests against a running gateway, and valid event bodies."""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from gateway.http.signing import signed_headers, signed_headers_v2
from gateway.settings import Settings
from gateway.storage.db import parse_database_url

# Long enough for `tthc serve`/`tthc worker`, which refuse secrets under 32 characters.
SOURCES = {
    "onestop": "s3cret-onestop-4f1c9a7e2b8d6035e1a4",
    "dvc": "0ther-secret-dvc-9b2e7d4a1c6f3850b7",
}
CODE = "000.00.12.H19-240401-0001"

DOSSIER: dict[str, Any] = {
    "code": CODE,
    "procedure": {"code": "1.004227", "name": "Cấp giấy phép xây dựng"},
    "agency": {"code": "000.00.12.H19", "name": "Sở Xây dựng"},
    "applicant": {"name": "Nguyễn Văn An", "phone": "0912 345 678"},
    "received_at": "2024-04-01T08:05:00+07:00",
    "due_at": "2024-04-12T17:00:00+07:00",
}
ACTOR = {"id": "cc-0123", "name": "Trần Thị Bình", "unit": "Bộ phận một cửa"}

VALID_DATA: dict[str, dict[str, Any]] = {
    "dossier.received": {},
    "dossier.supplement_requested": {"reason": "Thiếu bản vẽ", "documents": ["Bản vẽ mặt bằng"]},
    "dossier.refused": {"reason": "Không thuộc thẩm quyền"},
    "dossier.processing": {"unit": "Phòng Quản lý xây dựng"},
    "dossier.consultation_requested": {
        "consultation_id": "yk-1",
        "agency": {"code": "000.00.05.H19", "name": "Sở Tài nguyên và Môi trường"},
        "due_at": "2024-04-05T17:00:00+07:00",
    },
    "dossier.consultation_answered": {"consultation_id": "yk-1"},
    "dossier.fees_due": {"amount": 150000, "reason": "Lệ phí cấp phép"},
    "dossier.paused": {"reason": "Chờ xác minh"},
    "dossier.resumed": {},
    "dossier.withdrawn": {"approved_by": {"id": "ld-0001", "name": "Nguyễn Hữu Đạt"}},
    "dossier.delayed": {"new_due_at": "2024-04-17T17:00:00+07:00", "reason": "Chờ thẩm định"},
    "dossier.finished": {"pickup": "Trung tâm Hành chính công tỉnh, quầy 5"},
    "dossier.delivered": {},
}


def event(
    type_: str,
    *,
    id: str | None = None,
    at: str | None = None,
    code: str = CODE,
    data: dict[str, Any] | None = None,
    **dossier_changes: Any,
) -> dict[str, Any]:
    """A valid event body of ``type_`` (override anything after)."""
    dossier = copy.deepcopy(DOSSIER) | {"code": code} | dossier_changes
    if at is None:
        at = dossier["received_at"] if type_ == "dossier.received" else "2024-04-02T09:00:00+07:00"
    return {
        "id": id or f"evt-{code}-{type_.split('.')[1]}-{at}",
        "type": type_,
        "occurred_at": at,
        "dossier": dossier,
        "actor": dict(ACTOR),
        "data": copy.deepcopy(VALID_DATA[type_]) if data is None else data,
    }


@dataclass
class Gateway:
    """A gateway running on loopback HTTP, with signing helpers."""

    client: TestClient
    settings: Settings

    def headers(
        self, raw: bytes, source: str = "onestop", now: float | None = None
    ) -> dict[str, str]:
        headers = signed_headers(source, SOURCES[source], raw, time.time() if now is None else now)
        headers["Content-Type"] = "application/json"
        return headers

    async def post_raw(
        self,
        path: str,
        raw: bytes,
        *,
        source: str = "onestop",
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        return await self.client.post(path, data=raw, headers=headers or self.headers(raw, source))

    async def post(self, body: Any, *, source: str = "onestop") -> tuple[int, Any, ClientResponse]:
        raw = json.dumps(body, ensure_ascii=False).encode()
        response = await self.post_raw("/v1/events", raw, source=source)
        return response.status, await response.json(), response

    async def batch(self, bodies: list[Any]) -> tuple[int, Any]:
        raw = json.dumps({"events": bodies}, ensure_ascii=False).encode()
        response = await self.post_raw("/v1/events/batch", raw)
        return response.status, await response.json()

    async def get(self, path: str, source: str = "onestop") -> tuple[int, Any]:
        headers = signed_headers_v2(source, SOURCES[source], "GET", path, b"", time.time())
        response = await self.client.get(path, headers=headers)
        return response.status, await response.json()

    async def dossier(self, code: str = CODE) -> Any:
        status, body = await self.get(f"/v1/dossiers/{code}")
        assert status == 200, body
        return body

    async def check_pause(self, code: str = CODE) -> tuple[int, Any]:
        raw = json.dumps({"dossier": code}).encode()
        response = await self.post_raw("/v1/checks/pause", raw)
        return response.status, await response.json()


def changed(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with the dotted ``path`` set to ``value`` (or removed if ...)."""
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return body


async def rename_table(database_url: str, old: str, new: str) -> None:
    """Rename a table behind the gateway's back, from a connection of our own."""
    if database_url.startswith("sqlite"):
        path = parse_database_url(database_url).sqlite_path
        assert path is not None
        connection = sqlite3.connect(path, timeout=10)
        try:
            connection.execute(f"ALTER TABLE {old} RENAME TO {new}")
            connection.commit()
        finally:
            connection.close()
        return
    server, _, schema = database_url.partition("?schema=")
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'ALTER TABLE "{schema}".{old} RENAME TO {new}')
    finally:
        await conn.close()
