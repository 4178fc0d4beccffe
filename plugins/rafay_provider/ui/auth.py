"""Who may see the Billing view: the api-server mounts plugin apps without authenticating them, so
every route depends on :func:`require_user`.

The caller's Airflow JWT comes from ``Authorization: Bearer`` (API clients) or the ``_token`` cookie
the Airflow UI sets at login (the page inside the UI's iframe). It is verified by Airflow's own auth
manager (signature, expiry, revocation), and the user must be allowed to GET the custom view
``Billing`` (``is_authorized_custom_view``): the same decision Airflow makes for its own views.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status

RESOURCE_NAME = "Billing"
COOKIE_NAME = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN


def request_token(request: Request) -> str | None:
    """The JWT of the request: a Bearer header wins over the UI's session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(COOKIE_NAME) or None


async def require_user(request: Request) -> Any:
    """The authenticated, authorized Airflow user, else 401 (no or bad token) / 403 (not allowed)."""
    from airflow.api_fastapi.app import get_auth_manager
    from jwt import InvalidTokenError

    token = request_token(request)
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "Not authenticated: log in to Airflow and open Billing from its menu, or send an Airflow JWT "
            "as 'Authorization: Bearer <token>'",
        )
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except InvalidTokenError:  # bad signature, expired (ExpiredSignatureError), revoked, unknown user
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Invalid or expired Airflow token: log in again") from None
    if not manager.is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"User {user.get_name()!r} may not view {RESOURCE_NAME}")
    return user
