"""Typed application keys: the resources every handler reaches through `request.app`."""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.amqp import Topology
from libs.common.phones import PrefixTable
from services.api_gateway.admissions import Admissions
from services.api_gateway.auth import Authenticator
from services.api_gateway.publisher import Publisher
from services.api_gateway.ratelimit import RateLimiter
from services.api_gateway.settings import GatewaySettings
from services.api_gateway.topup_client import TopUpClient

SETTINGS = web.AppKey("settings", GatewaySettings)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
TOPOLOGY = web.AppKey("topology", Topology)
PREFIXES = web.AppKey("prefixes", PrefixTable)
AUTH = web.AppKey("auth", Authenticator)
LIMITER = web.AppKey("limiter", RateLimiter)
AMQP = web.AppKey("amqp", AbstractRobustConnection)
ADMISSIONS = web.AppKey("admissions", Admissions)
TOPUPS = web.AppKey("topups", TopUpClient)
PUBLISHER = web.AppKey("publisher", Publisher)
# Process-local memo (health result, the OpenAPI document), created with the app.
CACHES = web.AppKey("caches", dict)
