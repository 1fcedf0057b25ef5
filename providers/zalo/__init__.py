"""Zalo Official Account: OAuth token pair, OA ``cs`` messages, ZNS and webhooks.

One module per concern (wire contracts in ``docs/zalo.md``)::

    client.py     ZaloClient: the OA and ZNS calls, composing the modules below
      ├── tokens.py     TokenPair, TokenStore and the single-flight refresh (AccessTokens)
      ├── oa.py         OA message types and their ``cs`` request bodies
      ├── zns.py        ZNS templates: parsing, validation, phone format, the Redis cache
      ├── transport.py  one HTTP exchange with Zalo, answer handed to raise_for_zalo
      └── errors.py     raise_for_zalo: Zalo's answers → our exceptions (the code table)
    webhook.py    signature check and parsing of Zalo's webhook calls (pure, no I/O)

Every base URL comes from :class:`gateway.settings.ZaloSettings`, so tests and the local
demo point the client at the fake in ``providers/fakes/zalo/``.
"""
