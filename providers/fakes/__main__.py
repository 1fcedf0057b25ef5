"""Run the fake eSMS and SpeedSMS centres until interrupted.

    python -m providers.fakes --esms-port 9101 --speedsms-port 9102 \\
        --speedsms-callback http://127.0.0.1:8080/webhooks/sms/speedsms/SECRET

Port 0 (the default) picks a free port. Once both listen, two lines go to stdout,
``ESMS_BASE_URL=http://…`` and ``SPEEDSMS_BASE_URL=http://…``, ready to use as the
gateway's settings; open either URL in a browser to watch the messages arrive. The
pages show times in ``--time-zone`` (default ``$TIME_ZONE``, else Asia/Ho_Chi_Minh).
"""

from __future__ import annotations

from providers.fakes.control import Listener, run_standalone, standalone_parser
from providers.fakes.esms import create_esms_app
from providers.fakes.sms import FakeSmsCentre
from providers.fakes.speedsms import create_speedsms_app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve both fakes until SIGINT/SIGTERM."""
    parser = standalone_parser("python -m providers.fakes", "Fake eSMS and SpeedSMS centres.")
    parser.add_argument("--esms-port", type=int, default=0)
    parser.add_argument("--speedsms-port", type=int, default=0)
    parser.add_argument(
        "--speedsms-callback", default=None, help="status callback URL of the SpeedSMS account"
    )
    args = parser.parse_args(argv)

    def centre(callback_url: str | None = None) -> FakeSmsCentre:
        return FakeSmsCentre(
            timeout_delay=args.timeout_delay,
            receipt_delay=args.receipt_delay,
            callback_url=callback_url,
            time_zone=args.time_zone,
        )

    run_standalone(
        args.host,
        [
            Listener(
                create_esms_app(centre()), args.esms_port, lambda base: [f"ESMS_BASE_URL={base}"]
            ),
            Listener(
                create_speedsms_app(centre(args.speedsms_callback)),
                args.speedsms_port,
                lambda base: [f"SPEEDSMS_BASE_URL={base}"],
            ),
        ],
        "fake SMS centres running; Ctrl-C stops them",
    )


if __name__ == "__main__":
    main()
