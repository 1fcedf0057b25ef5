"""The citizen page: ``/tra-cuu`` (lookup, proof, answers) and ``/l/<token>`` (SMS links).

- :mod:`gateway.http.citizen.visits`  sessions, CSRF, rate limits, client address, pages;
- :mod:`gateway.http.citizen.lookup`  the public status, proofs, the details;
- :mod:`gateway.http.citizen.actions` "đã nhận / chưa nhận", false-closure reports, ratings;
- :mod:`gateway.http.citizen.links`   the signed links in SMS, and stopping Zalo notices.

:func:`setup_citizen` adds them to the gateway's application (at the root, beside the
API): the pages use the main application's database, Redis, queue and clock.
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.citizen import actions, links, lookup
from gateway.http.citizen.visits import ENVIRONMENT, page_environment
from gateway.http.keys import TEXTS
from gateway.settings import Settings

__all__ = ["setup_citizen"]


def setup_citizen(app: web.Application, settings: Settings) -> None:
    """Add the citizen page's routes and its template environment to ``app``."""
    app[ENVIRONMENT] = page_environment(settings, app[TEXTS])
    app.add_routes(lookup.routes)
    app.add_routes(actions.routes)
    app.add_routes(links.routes)
