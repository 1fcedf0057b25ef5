"""``/l/<token>``: the signed link of an SMS (see :mod:`gateway.trust.links`).

- A valid, unexpired link of an invitation or a result check: the session now holds the
  proof ``sms_link`` for that notice's dossier (the SMS went to the dossier's phone), and
  the answer is a 303 to ``/tra-cuu?ma=<code>``, where the citizen answers and rates.
  Unless the dossier's phone changed since the SMS was sent: then the link proves nothing.
- A valid link of a ``channel_moved`` SMS ("from now on your notices come on Zalo"): a
  page asking "not you?" with a POST button that stops that phone's Zalo subscription
  (:func:`gateway.trust.subscriptions.stop`, ``by="web"``) and confirms it; its notices
  come by SMS again.
- Anything else (unknown, malformed, expired): a page saying the link is no longer
  valid, with the lookup form. The token is never logged; the notice id is.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.citizen.lookup import load_dossier, lookup_url
from gateway.http.citizen.visits import Visit, citizen_page, see_other
from gateway.trust import subscriptions
from gateway.trust.links import LinkTarget, resolve

routes = web.RouteTableDef()

CHANNEL_MOVED = "channel_moved"


async def _target(visit: Visit) -> LinkTarget | None:
    token = visit.request.match_info["token"]
    target = await resolve(visit.engine, visit.settings, token, visit.now)
    if target is None:
        visit.log("citizen link refused: unknown or expired")
    return target


@routes.get("/l/{token}", name="citizen_link")
@citizen_page
async def open_link(visit: Visit) -> web.StreamResponse:
    target = await _target(visit)
    if target is None:
        return visit.problem("link_invalid", 404)
    visit.log("citizen link opened", dossier=target.dossier_code, notice=target.notice_id)
    if target.kind == CHANNEL_MOVED:
        return visit.page("moved.html.j2", {"token": visit.request.match_info["token"]})
    dossier = await load_dossier(visit.engine, target.dossier_code)
    if dossier is None or dossier.phone_e164 != target.phone_e164:
        # The dossier's phone changed since the SMS: its holder proves nothing any more.
        visit.log("citizen link refused: the dossier's phone changed", notice=target.notice_id)
        return visit.problem("link_invalid", 404)
    visit.grant(target.dossier_code, "sms_link")
    return see_other(lookup_url(target.dossier_code))


@routes.post("/l/{token}", name="citizen_link_stop")
@citizen_page
async def stop_zalo(visit: Visit) -> web.StreamResponse:
    target = await _target(visit)
    if target is None or target.kind != CHANNEL_MOVED or target.phone_e164 is None:
        return visit.problem("link_invalid", 404)
    stopped = await subscriptions.stop(
        visit.engine, phone_e164=target.phone_e164, by="web", now=visit.now
    )
    visit.log("citizen stopped Zalo notices", notice=target.notice_id, stopped=stopped is not None)
    return visit.page("done.html.j2", {"what": "stopped", "code": ""})
