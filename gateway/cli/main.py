"""The ``tthc`` command (also ``python -m gateway``).

``main()`` only parses arguments, loads settings and runs; every command lives in its
own module.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence

import aiohttp
from yarl import URL

from gateway import __version__
from gateway.errors import ConfigError
from gateway.http.signing import signed_headers_v2
from gateway.logs import configure as configure_logging
from gateway.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tthc", description="tthc-gateway operations")
    parser.add_argument("--version", action="version", version=f"tthc-gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="run the HTTP service (needs a migrated database)")
    sub.add_parser("migrate", help="bring the database schema up to date")

    worker = sub.add_parser("worker", help="deliver notices; also runs the relay and sweep")
    worker.add_argument("--burst", action="store_true", help="stop when the queues are empty")
    worker.add_argument("--no-cron", action="store_true", help="do not run the relay/sweep cron")

    templates = sub.add_parser("templates", help="preview message templates", add_help=False)
    templates.add_argument("args", nargs=argparse.REMAINDER)

    demo = sub.add_parser("demo", help="everything on one machine with sample traffic")
    demo.add_argument(
        "--dossiers",
        type=int,
        default=12,
        help="sample dossiers to post (at least the 6 scripted ones; the rest are random)",
    )
    demo.add_argument("--delay", type=float, default=0.15, help="seconds between events")
    demo.add_argument(
        "--exit",
        action="store_true",
        help="stop after posting and checking (exit status 1 if a part is broken)",
    )
    demo.add_argument(
        "--allow-remote",
        action="store_true",
        help="use a database or Redis that is not on this machine (refused by default)",
    )

    phones = sub.add_parser("phones", help="normalise phone numbers (one per line)", add_help=False)
    phones.add_argument("args", nargs=argparse.REMAINDER)

    user = sub.add_parser(
        "user", help="add, list and disable staff users; set passwords; reset TOTP", add_help=False
    )
    user.add_argument("args", nargs=argparse.REMAINDER)

    audit = sub.add_parser("audit", help="rebuild the violations ledger", add_help=False)
    audit.add_argument("args", nargs=argparse.REMAINDER)

    retention = sub.add_parser(
        "retention", help="erase personal data older than RETENTION_DAYS", add_help=False
    )
    retention.add_argument("args", nargs=argparse.REMAINDER)

    officers = sub.add_parser("officers", help="import the officer directory", add_help=False)
    officers.add_argument("args", nargs=argparse.REMAINDER)

    bench = sub.add_parser(
        "bench", help="benchmark tools from the checkout: `tthc bench seed`", add_help=False
    )
    bench.add_argument("args", nargs=argparse.REMAINDER)

    zalo = sub.add_parser("zalo", help="Zalo operations")
    zalo_sub = zalo.add_subparsers(dest="zalo_command", required=True)
    token = zalo_sub.add_parser(
        "set-refresh-token",
        help="store a new refresh token (read from stdin) after Zalo refused the last one",
    )
    token.add_argument("--token", help="the token (default: read from stdin, not kept in history)")

    get = sub.add_parser("get", help="signed GET against a gateway, printed as JSON")
    get.add_argument("path", help="e.g. /v1/dossiers/000.00.12.H19-240401-0001")
    get.add_argument("--url", help="gateway base URL (default from HTTP_HOST/HTTP_PORT)")
    get.add_argument("--source", help="source id (default: first of EVENT_SOURCES)")
    get.add_argument("--secret", help="its secret (default: from EVENT_SOURCES)")
    return parser


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        print(f"tthc: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def _serve(settings: Settings) -> int:
    from gateway.processes.server import serve

    return serve(settings)


def _migrate(settings: Settings) -> int:
    from gateway.storage import migrate

    migrate.upgrade(settings.database_url)
    print(f"database is at revision {migrate.head_revision()}", file=sys.stderr)
    return 0


async def _set_refresh_token(settings: Settings, token: str) -> int:
    """Replace the stored pair by ``token`` with an expired access token, so the next
    call refreshes with it, and clear the operator alert."""
    from gateway.chat.tokens import replace_refresh_token

    if not settings.zalo.enabled:
        print("tthc: ZALO_APP_ID and ZALO_APP_SECRET are not set", file=sys.stderr)
        return 1
    if not token or any(c.isspace() for c in token) or len(token) > 1000:
        print("tthc: give one refresh token (on stdin or with --token)", file=sys.stderr)
        return 1
    await replace_refresh_token(settings, token)
    print("refresh token stored; the next Zalo call refreshes with it", file=sys.stderr)
    return 0


async def _get(
    settings: Settings, path: str, url: str | None, source: str | None, secret: str | None
) -> int:
    base = url or f"http://{settings.http_host}:{settings.http_port}"
    if source is None:
        if not settings.event_sources:
            print("tthc: give --source/--secret or set EVENT_SOURCES", file=sys.stderr)
            return 2
        source = next(iter(settings.event_sources))
    secret = secret or settings.event_sources.get(source)
    if not secret:
        print(f"tthc: no secret for source {source!r}", file=sys.stderr)
        return 2
    if not path.startswith("/"):
        print("tthc: the path must start with /, e.g. /v1/dossiers/<code>", file=sys.stderr)
        return 2
    # Quote once, sign the target exactly as it will go on the wire (v2 binds it).
    target = URL(base.rstrip("/") + path)
    headers = signed_headers_v2(source, secret, "GET", target.raw_path_qs, b"", time.time())
    async with aiohttp.ClientSession() as session, session.get(target, headers=headers) as r:
        body = await r.json(content_type=None)
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if r.status < 400 else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["phones"]:
        # Its options belong to it; argparse would claim the ones that look like ours.
        from gateway.cli import phones as phones_cli

        return phones_cli.main(argv[1:])
    if argv[:1] == ["templates"]:
        from gateway.cli import templates as templates_cli

        return templates_cli.preview_main(argv[1:])
    if argv[:1] == ["user"]:
        from gateway.cli import users as staff_cli

        return staff_cli.main(argv[1:], _settings)
    if argv[:1] == ["audit"]:
        from gateway.cli import audit as audit_cli

        return audit_cli.main(argv[1:], _settings)
    if argv[:1] == ["retention"]:
        from gateway.cli import retention as retention_cli

        return retention_cli.main(argv[1:], _settings)
    if argv[:1] == ["officers"]:
        from gateway.cli import officers as officers_cli

        return officers_cli.main(argv[1:], _settings)
    if argv[:1] == ["bench"]:
        from gateway.cli import bench as bench_cli

        return bench_cli.main(argv[1:])
    args = _parser().parse_args(argv)
    settings = _settings()
    if args.command != "demo":  # the demo prints its story on stdout and logs to a file
        configure_logging(settings.log_level, settings.log_format)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "worker":
        from gateway.processes import worker

        return worker.run(settings, burst=args.burst, cron=not args.no_cron)
    if args.command == "demo":
        from gateway.local import demo

        return demo.main(
            settings,
            dossiers=args.dossiers,
            delay=args.delay,
            stay=not args.exit,
            allow_remote=args.allow_remote,
        )
    if args.command == "zalo":
        token = (args.token or sys.stdin.readline()).strip()
        return asyncio.run(_set_refresh_token(settings, token))
    if args.command == "get":
        return asyncio.run(_get(settings, args.path, args.url, args.source, args.secret))
    raise AssertionError(args.command)
