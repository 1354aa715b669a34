"""MTN API users: the sandbox provisioning API and the subscription-key gate of every MTN call."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from aiohttp import web

from simulators.mobile_money.http_common import (
    json_reply,
    mtn_error,
    platform_of,
    read_json_object,
)
from simulators.mobile_money.logs import log
from simulators.mobile_money.sandbox import is_uuid4
from simulators.mobile_money.settings import SimulatorSettings

# The API Management gateway answers before MTN's back end, in its own shape.
SUBSCRIPTION_DENIED = {
    "statusCode": 401,
    "message": "Access denied due to invalid subscription key. "
    "Make sure to provide a valid key for an active subscription.",
}
NOT_FOUND_MESSAGE = "Requested resource was not found."


@dataclass(slots=True)
class ApiUser:
    """An API user; its providerCallbackHost bounds the X-Callback-Url hosts it may name."""

    user_id: str
    provider_callback_host: str | None
    api_key: str | None = None


class ApiUsers:
    """The configured API user plus any provisioned through `/v1_0/apiuser`."""

    def __init__(self, settings: SimulatorSettings) -> None:
        configured = ApiUser(
            settings.mtn_api_user.lower(), settings.mtn_callback_host, settings.mtn_api_key
        )
        self._users = {configured.user_id: configured}

    def get(self, user_id: str) -> ApiUser | None:
        """The user with this id (any case), or None."""
        return self._users.get(user_id.lower())

    def add(self, user_id: str, provider_callback_host: str) -> ApiUser | None:
        """Provision a user; None if the id is taken."""
        if user_id.lower() in self._users:
            return None
        user = ApiUser(user_id.lower(), provider_callback_host)
        self._users[user.user_id] = user
        return user

    def login(self, user_id: str, api_key: str) -> ApiUser | None:
        """The user if `api_key` is its current key."""
        user = self.get(user_id)
        if user is None or user.api_key is None:
            return None
        if not hmac.compare_digest(user.api_key.encode(), api_key.encode()):
            return None
        return user


MTN_USERS_KEY = web.AppKey("mtn_users", ApiUsers)


def subscription_denied(request: web.Request) -> web.Response | None:
    """The gateway's 401 unless the request carries the configured subscription key."""
    expected = platform_of(request).settings.mtn_subscription_key
    given = request.headers.get("Ocp-Apim-Subscription-Key", "")
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return json_reply(SUBSCRIPTION_DENIED, status=401)


async def create_api_user(request: web.Request) -> web.Response:
    """`POST /v1_0/apiuser` with X-Reference-Id and `{"providerCallbackHost"}` -> 201."""
    if (denied := subscription_denied(request)) is not None:
        return denied
    user_id = request.headers.get("X-Reference-Id", "").strip()
    if not is_uuid4(user_id):
        return mtn_error(400, "INVALID_REFERENCE_ID", "X-Reference-Id must be a UUID version 4.")
    body = await read_json_object(request)
    host = None if body is None else body.get("providerCallbackHost")
    if not isinstance(host, str) or not host.strip():
        return mtn_error(400, "INVALID_PARAMETER", "providerCallbackHost is required.")
    if request.app[MTN_USERS_KEY].add(user_id, host.strip()) is None:
        return mtn_error(
            409, "RESOURCE_ALREADY_EXIST", "Duplicated reference id. Creation of resource failed."
        )
    log.info("mtn.api_user.created", api_user=user_id.lower(), callback_host=host.strip())
    return web.Response(status=201)


async def create_api_key(request: web.Request) -> web.Response:
    """`POST /v1_0/apiuser/{id}/apikey` -> 201 `{"apiKey"}`; a new key replaces the old one."""
    if (denied := subscription_denied(request)) is not None:
        return denied
    user = request.app[MTN_USERS_KEY].get(request.match_info["user_id"])
    if user is None:
        return mtn_error(404, "RESOURCE_NOT_FOUND", NOT_FOUND_MESSAGE)
    user.api_key = secrets.token_hex(16)
    return json_reply({"apiKey": user.api_key}, status=201)


async def get_api_user(request: web.Request) -> web.Response:
    """`GET /v1_0/apiuser/{id}` -> `{"providerCallbackHost", "targetEnvironment"}`."""
    if (denied := subscription_denied(request)) is not None:
        return denied
    user = request.app[MTN_USERS_KEY].get(request.match_info["user_id"])
    if user is None:
        return mtn_error(404, "RESOURCE_NOT_FOUND", NOT_FOUND_MESSAGE)
    return json_reply(
        {
            "providerCallbackHost": user.provider_callback_host,
            "targetEnvironment": platform_of(request).settings.mtn_target_environment,
        }
    )


def add_routes(app: web.Application) -> None:
    """Register the provisioning routes."""
    app.router.add_post("/v1_0/apiuser", create_api_user)
    app.router.add_post("/v1_0/apiuser/{user_id}/apikey", create_api_key)
    app.router.add_get("/v1_0/apiuser/{user_id}", get_api_user)
