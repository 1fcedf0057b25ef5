"""The long-running processes: the HTTP server, the worker, and the RQ jobs it runs."""
