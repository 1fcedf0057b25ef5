"""The staff console: server-rendered Vietnamese pages under ``/console/``.

A sub-application with middlewares of its own (HTML error pages, Redis sessions, CSRF,
login and role checks), so the webhooks and the JSON API never pass through them.
"""
