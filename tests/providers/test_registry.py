"""The provider registry: failover order from settings, credentials checked at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway import settings as settings_module
from gateway.errors import ConfigError
from gateway.settings import Settings
from providers.esms import EsmsProvider
from providers.log import LogProvider
from providers.registry import PROVIDER_NAMES, build_sms_providers
from providers.speedsms import SpeedSmsProvider

ESMS = {"ESMS_API_KEY": "key", "ESMS_SECRET_KEY": "secret", "ESMS_BRANDNAME": "TTHC-TINH"}
SPEEDSMS = {"SPEEDSMS_TOKEN": "token", "SPEEDSMS_SENDER": "TTHC-TINH"}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_mapping(env, workdir=tmp_path)


def test_registry_knows_exactly_the_providers_settings_accept() -> None:
    assert set(PROVIDER_NAMES) == settings_module._KNOWN_SMS_PROVIDERS


async def test_providers_are_built_in_the_configured_order(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    config = settings(tmp_path, SMS_PROVIDERS="speedsms,log,esms", **ESMS, **SPEEDSMS)

    providers = build_sms_providers(config, session)

    assert [p.name for p in providers] == ["speedsms", "log", "esms"]
    assert [type(p) for p in providers] == [SpeedSmsProvider, LogProvider, EsmsProvider]


async def test_default_is_the_log_provider(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    [provider] = build_sms_providers(settings(tmp_path), session)

    assert isinstance(provider, LogProvider)
    assert provider.accents is True


async def test_accents_follow_each_vendor_setting(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    config = settings(
        tmp_path,
        SMS_PROVIDERS="esms,speedsms",
        ESMS_ACCENTS="true",
        SPEEDSMS_ACCENTS="false",
        **ESMS,
        **SPEEDSMS,
    )

    assert [p.accents for p in build_sms_providers(config, session)] == [True, False]


@pytest.mark.parametrize(
    ("providers", "env", "variable"),
    [
        ("esms", {}, "ESMS_API_KEY"),
        ("esms", {**ESMS, "ESMS_API_KEY": ""}, "ESMS_API_KEY"),
        ("esms", {**ESMS, "ESMS_SECRET_KEY": ""}, "ESMS_SECRET_KEY"),
        ("esms", {**ESMS, "ESMS_BRANDNAME": ""}, "ESMS_BRANDNAME"),
        ("log,speedsms", {}, "SPEEDSMS_TOKEN"),
        ("speedsms", {"SPEEDSMS_TOKEN": "token"}, "SPEEDSMS_SENDER"),  # brandname type 3
        ("esms,speedsms", {**ESMS}, "SPEEDSMS_TOKEN"),
    ],
)
async def test_a_listed_provider_without_credentials_stops_start_up(
    tmp_path: Path,
    session: aiohttp.ClientSession,
    providers: str,
    env: dict[str, str],
    variable: str,
) -> None:
    config = settings(tmp_path, SMS_PROVIDERS=providers, **env)

    with pytest.raises(ConfigError) as caught:
        build_sms_providers(config, session)

    assert caught.value.variable == variable
    assert variable in str(caught.value)


async def test_every_missing_variable_is_named(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_sms_providers(settings(tmp_path, SMS_PROVIDERS="esms"), session)

    assert "ESMS_SECRET_KEY" in caught.value.reason
    assert "ESMS_BRANDNAME" in caught.value.reason


async def test_speedsms_without_a_brandname_type_needs_no_sender(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    config = settings(
        tmp_path, SMS_PROVIDERS="speedsms", SPEEDSMS_TOKEN="token", SPEEDSMS_SMS_TYPE="4"
    )

    [provider] = build_sms_providers(config, session)

    assert provider.name == "speedsms"


async def test_unlisted_vendors_need_no_credentials(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    config = settings(tmp_path, SMS_PROVIDERS="esms", **ESMS)

    assert [p.name for p in build_sms_providers(config, session)] == ["esms"]
