"""docker login: check credentials against a registry; the client keeps them, the agent does not."""

from __future__ import annotations

from agent.distribution.auth import Credentials
from agent.distribution.client import RegistryError, connect
from agent.distribution.registries import RegistryOptions, registry_of
from kran import errors

LOGIN_SUCCEEDED = "Login Succeeded"


async def login(options: RegistryOptions, server_address: str, credentials: Credentials) -> str:
    """GET /v2/ with the credentials (Basic, or a token from the registry's realm).

    Returns "Login Succeeded"; wrong credentials are errors.PermissionDenied
    with the registry's words.
    """
    if not credentials:
        raise errors.InvalidArgument("no username or identity token given to log in with")
    domain = registry_of(server_address)
    client = await connect(domain, options, credentials, pull=False)
    try:
        if client.challenge is None:
            return LOGIN_SUCCEEDED  # the registry asks for no authentication
        try:
            await client.call("GET", "/v2/")
        except RegistryError as exc:
            if exc.status in (401, 403):
                raise errors.PermissionDenied(exc.text() if exc.codes else "unauthorized: authentication required")
            raise exc.to_kran() from None
    finally:
        await client.close()
    return LOGIN_SUCCEEDED
