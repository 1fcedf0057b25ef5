"""Notice rendering: the Jinja2 templates, SMS texts within a segment budget, Zalo forms."""
