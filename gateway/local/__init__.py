"""The local-run kit: ``tthc demo``, the simulated one-stop-shop and a private Redis."""
