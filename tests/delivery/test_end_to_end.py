"""Events in, SMS out at the vendor's fake, receipts back: exactly one SMS per notice."""

from __future__ import annotations

from tests.delivery.conftest import Rig
from tests.helpers import CODE, event


async def test_receipt_apology_and_invitation_reach_the_citizen_once(rig: Rig) -> None:
    for body in (
        event("dossier.received"),
        event("dossier.processing"),
        event("dossier.delayed", at="2024-04-11T09:00:00+07:00"),
        event("dossier.finished", at="2024-04-16T09:15:00+07:00"),
    ):
        status, answer, _ = await rig.gateway.post(body)
        assert status == 202, answer

    await rig.work()
    notices = await rig.until(CODE, {"delivered"})
    assert sorted(n["kind"] for n in notices) == ["apology", "invitation", "receipt"]
    assert {(n["channel"], n["provider"]) for n in notices} == {("sms", "esms")}

    sent = rig.esms.messages
    assert len(sent) == 3
    assert {m.phone for m in sent} == {"0912345678"}  # eSMS takes the national form
    assert all(CODE in m.content for m in sent)
    by_kind = {n["kind"]: n for n in notices}
    apology = next(
        m for m in sent if m.request_id and m.request_id.startswith(by_kind["apology"]["id"])
    )
    assert "17/04/2024" in apology.content  # the new date
    assert rig.speedsms.messages == []

    # Running the worker again sends nothing more.
    await rig.work()
    assert len(rig.esms.messages) == 3
