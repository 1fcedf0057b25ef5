"""Run the fake eSMS and SpeedSMS centres until interrupted.

    python -m providers.fakes --esms-port 9101 --speedsms-port 9102 \\
        --speedsms-callback http://127.0.0.1:8080/webhooks/sms/speedsms/SECRET

Port 0 (the default) picks a free port. Once both listen, two lines go to stdout,
``ESMS_BASE_URL=http://…`` and ``SPEEDSMS_BASE_URL=http://…``, ready to use as the
gateway's settings; open either URL in a browser to watch the messages arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from providers.fakes.sms import FakeSmsCentre, create_esms_app, create_speedsms_app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve both fakes until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m providers.fakes", description="Fake eSMS and SpeedSMS centres."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--esms-port", type=int, default=0)
    parser.add_argument("--speedsms-port", type=int, default=0)
    parser.add_argument(
        "--speedsms-callback", default=None, help="status callback URL of the SpeedSMS account"
    )
    parser.add_argument(
        "--timeout-delay",
        type=float,
        default=15.0,
        help="seconds the 'timeout' mode holds an answer (longer than the client's timeout)",
    )
    parser.add_argument("--receipt-delay", type=float, default=0.5)
    args = parser.parse_args(argv)
    # Callback failures are logged at INFO: a newcomer sees why a receipt did not arrive.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> None:
    def centre(callback_url: str | None = None) -> FakeSmsCentre:
        return FakeSmsCentre(
            timeout_delay=args.timeout_delay,
            receipt_delay=args.receipt_delay,
            callback_url=callback_url,
        )

    fakes = (
        ("ESMS_BASE_URL", create_esms_app(centre()), args.esms_port),
        (
            "SPEEDSMS_BASE_URL",
            create_speedsms_app(centre(args.speedsms_callback)),
            args.speedsms_port,
        ),
    )
    runners: list[web.AppRunner] = []
    try:
        for variable, app, port in fakes:
            runner = web.AppRunner(app, shutdown_timeout=1.0)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, args.host, port).start()
            bound = runner.addresses[0][1]
            print(f"{variable}=http://{args.host}:{bound}", flush=True)
        print("fake SMS centres running; Ctrl-C stops them", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


if __name__ == "__main__":
    main()
