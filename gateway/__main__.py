"""``python -m gateway`` is the ``tthc`` command."""

from gateway.cli import main

raise SystemExit(main())
