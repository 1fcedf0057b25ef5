"""Build the configured SMS providers, in failover order, from settings.

``SMS_PROVIDERS=esms,speedsms`` yields ``[EsmsProvider, SpeedSmsProvider]``. A listed
vendor without its credentials stops start-up with a ``ConfigError`` naming the
missing variable; nothing is checked for vendors that are not listed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import aiohttp

from gateway.errors import ConfigError
from gateway.settings import Settings
from providers.base import SmsProvider
from providers.esms import EsmsProvider
from providers.log import LogProvider
from providers.speedsms import SpeedSmsProvider

# SpeedSMS sms_type values that send from a sender the account registered (brandname,
# Android gateway device, own number) and so need SPEEDSMS_SENDER.
_SPEEDSMS_TYPES_WITH_SENDER = frozenset({3, 5, 7})


def _esms(settings: Settings, session: aiohttp.ClientSession) -> SmsProvider:
    esms = settings.esms
    _require(
        "esms",
        {
            "ESMS_API_KEY": esms.api_key,
            "ESMS_SECRET_KEY": esms.secret_key,
            "ESMS_BRANDNAME": esms.brandname,
        },
    )
    return EsmsProvider(esms, session, timeout=settings.sms_timeout_seconds)


def _speedsms(settings: Settings, session: aiohttp.ClientSession) -> SmsProvider:
    speedsms = settings.speedsms
    needed = {"SPEEDSMS_TOKEN": speedsms.token}
    if speedsms.sms_type in _SPEEDSMS_TYPES_WITH_SENDER:
        needed["SPEEDSMS_SENDER"] = speedsms.sender
    _require("speedsms", needed)
    return SpeedSmsProvider(speedsms, session, timeout=settings.sms_timeout_seconds)


def _log(settings: Settings, session: aiohttp.ClientSession) -> SmsProvider:
    del settings, session
    return LogProvider()


_FACTORIES: Mapping[str, Callable[[Settings, aiohttp.ClientSession], SmsProvider]] = {
    "esms": _esms,
    "speedsms": _speedsms,
    "log": _log,
}
PROVIDER_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def build_sms_providers(settings: Settings, session: aiohttp.ClientSession) -> list[SmsProvider]:
    """Return one provider per name in ``settings.sms_providers``, in that order."""
    providers: list[SmsProvider] = []
    for name in settings.sms_providers:
        factory = _FACTORIES.get(name)
        if factory is None:
            known = ", ".join(PROVIDER_NAMES)
            raise ConfigError("SMS_PROVIDERS", f"unknown provider {name!r} (known: {known})")
        providers.append(factory(settings, session))
    return providers


def _require(provider: str, values: Mapping[str, str]) -> None:
    missing = [variable for variable, value in values.items() if not value]
    if missing:
        also = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise ConfigError(missing[0], f"must be set because SMS_PROVIDERS lists {provider}{also}")
