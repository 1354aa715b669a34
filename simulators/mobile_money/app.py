"""The application factory: both providers' APIs and the control endpoints on one port."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from simulators.mobile_money import airtel_api, control_api, mtn_api, mtn_users
from simulators.mobile_money.http_common import PLATFORM_KEY, provider_behaviour
from simulators.mobile_money.platform import WalletPlatform
from simulators.mobile_money.tokens import TokenIssuer


def create_app(platform: WalletPlatform) -> web.Application:
    """An application serving `platform`; it starts and closes the platform with itself."""
    settings = platform.settings
    app = web.Application(middlewares=[provider_behaviour])
    app[PLATFORM_KEY] = platform
    app[mtn_users.MTN_USERS_KEY] = mtn_users.ApiUsers(settings)
    app[mtn_api.MTN_TOKENS_KEY] = TokenIssuer(settings.mtn_token_lifetime)
    app[airtel_api.AIRTEL_TOKENS_KEY] = TokenIssuer(settings.airtel_token_lifetime)
    mtn_users.add_routes(app)
    mtn_api.add_routes(app)
    airtel_api.add_routes(app)
    control_api.add_routes(app)

    async def platform_running(app: web.Application) -> AsyncIterator[None]:
        await platform.start()
        yield
        await platform.close()

    app.cleanup_ctx.append(platform_running)
    return app
