"""tthc-gateway: notices, chatbot and audit feed for a province's one-stop-shop system."""

__version__ = "0.1.0"
