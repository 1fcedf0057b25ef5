"""``python -m gateway`` is the ``tthc`` command."""

from gateway.cli.main import main

raise SystemExit(main())
