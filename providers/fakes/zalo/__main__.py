"""Run the fake Zalo until interrupted and print the gateway settings that point at it.

    python -m providers.fakes.zalo --port 9103 --webhook http://127.0.0.1:8080/webhooks/zalo

Port 0 (the default) picks a free port. Seven ``NAME=value`` lines go to stdout (the
three base URLs, the app's id and secret, the OA secret key, a refresh token); open the
base URL in a browser to chat as a citizen. The page shows times in ``--time-zone``
(default ``$TIME_ZONE``, else Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

from providers.fakes.control import Listener, run_standalone, standalone_parser
from providers.fakes.zalo.server import create_app, settings_lines
from providers.fakes.zalo.state import FakeZalo


def main(argv: list[str] | None = None) -> None:
    """Serve the fake Zalo until SIGINT/SIGTERM; print the gateway settings to use."""
    parser = standalone_parser("python -m providers.fakes.zalo", "A fake Zalo platform.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--webhook", default=None, help="the gateway's /webhooks/zalo URL")
    parser.add_argument("--late-receipt-delay", type=float, default=5.0)
    args = parser.parse_args(argv)
    fake = FakeZalo(
        webhook_url=args.webhook,
        timeout_delay=args.timeout_delay,
        receipt_delay=args.receipt_delay,
        late_receipt_delay=args.late_receipt_delay,
    )
    app = create_app(fake, time_zone=args.time_zone)
    run_standalone(
        args.host,
        [Listener(app, args.port, lambda base: settings_lines(fake, base))],
        "fake Zalo running; open the base URL to chat; Ctrl-C stops it",
    )


if __name__ == "__main__":
    main()
