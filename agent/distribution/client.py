"""An HTTP client for one registry (distribution API v2), with its authentication.

`connect()` tries a registry's endpoints in order (agent.distribution.registries),
pinging `GET /v2/` on each: the first that answers is used for the whole
operation, and its 401 challenge tells how to authenticate. A server that
refuses the connection or does not speak TLS moves on to the next
endpoint; a certificate that cannot be verified stops with a message that
says how to trust it.

Every request goes through `RegistryClient.send`: it adds Basic
credentials or a bearer token for the request's scopes (fetching one from
the token realm when needed, and again once when a registry refuses it),
and follows redirects of GET and HEAD itself, sending credentials only to
the registry's own origin (a blob redirected to a storage bucket gets none).

httpx was chosen for this: an asyncio client (the agent's servers are
asyncio), streaming request and response bodies, a TLS context per client
(so each registry gets its own CAs) and redirects left to the caller.
"""

from __future__ import annotations

import errno
import json
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from agent.distribution.auth import Challenge, Credentials, TokenCache, parse_challenges, token_from_response
from agent.distribution.registries import Endpoint, RegistryOptions, endpoints
from kran import errors

USER_AGENT = "kran/0.1 (distribution client)"
MAX_REDIRECTS = 10
MAX_ERROR_BODY = 64 << 10
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class RegistryError(Exception):
    """A registry's error answer: HTTP status and its `errors` list as (code, message) pairs."""

    status: int
    reason: str
    codes: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        """Docker's rendering: "manifest unknown: manifest unknown", or the HTTP status."""
        if self.codes:
            return "; ".join(f"{code.lower().replace('_', ' ')}: {message}" if message
                             else code.lower().replace("_", " ") for code, message in self.codes)
        return f"received unexpected HTTP status: {self.status} {self.reason}"

    def has(self, *codes: str) -> bool:
        """Whether the registry gave one of `codes` (NAME_UNKNOWN, MANIFEST_UNKNOWN, ...)."""
        return any(code in codes for code, _ in self.codes)

    def to_kran(self) -> errors.KranError:
        """The kran error kind this answer stands for, with the registry's words."""
        if self.status == 401:
            return errors.PermissionDenied(self.text() if self.codes else "unauthorized: authentication required")
        if self.status == 403:
            return errors.PermissionDenied(self.text())
        if self.status == 404:
            return errors.NotFound(self.text())
        if self.status in (408, 429) or self.status >= 500:
            return errors.Unavailable(self.text())
        return errors.InvalidArgument(self.text())


def error_codes(body: bytes) -> tuple[tuple[str, str], ...]:
    try:
        doc = json.loads(body)
    except ValueError:
        return ()
    items = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return ()
    return tuple((str(e.get("code") or "UNKNOWN"), str(e.get("message") or ""))
                 for e in items if isinstance(e, dict))


def next_link(header: str) -> str | None:
    """The target of a pagination header `Link: </v2/_catalog?last=x&n=10>; rel="next"`."""
    for part in header.split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            return part[part.index("<") + 1:part.index(">")]
    return None


class Unreachable(errors.Unavailable):
    """An endpoint that refused the connection or does not speak TLS: the next one may do."""


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _describe(exc: BaseException) -> tuple[str, type[BaseException] | None]:
    """A short reason for a transport error, and the ssl error class behind it if any."""
    seen: BaseException | None = exc
    ssl_kind: type[BaseException] | None = None
    reason = str(exc) or type(exc).__name__
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"tls: failed to verify certificate: {seen.verify_message}", ssl.SSLCertVerificationError
        if isinstance(seen, ssl.SSLError):
            ssl_kind = ssl.SSLError
            reason = f"tls: {seen.reason or seen}".lower()
        elif isinstance(seen, OSError) and seen.errno:
            reason = f"connect: {os.strerror(seen.errno).lower()}"
            if seen.errno == errno.ECONNREFUSED:
                return reason, None
        seen = seen.__cause__ or seen.__context__
    return reason, ssl_kind


class RegistryClient:
    """Requests to one registry endpoint for one operation; close() (or `async with`) when done."""

    def __init__(self, endpoint: Endpoint, credentials: Credentials) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.challenge: Challenge | None = None
        self.tokens = TokenCache()
        self._http = httpx.AsyncClient(
            verify=endpoint.ssl_context(), follow_redirects=False, trust_env=False,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            headers={"User-Agent": USER_AGENT})

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    def url(self, path: str) -> str:
        """An absolute URL for a path of the API ("/v2/...") or a Location the registry gave."""
        return urljoin(self.endpoint.url + "/", path)

    # Authentication.

    async def _authorization(self, scopes: tuple[str, ...], fresh: bool) -> str | None:
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return self.credentials.basic() if self.credentials else None
        if challenge.scheme != "bearer":
            return None
        wanted = tuple(sorted(set(scopes) | ({challenge.params["scope"]} if challenge.params.get("scope") else set())))
        if fresh:
            self.tokens.drop(wanted)
        token = self.tokens.get(wanted)
        if token is None:
            token, lifetime = await self._fetch_token(challenge, wanted)
            self.tokens.put(wanted, token, lifetime)
        return f"Bearer {token}"

    async def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> tuple[str, float]:
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise errors.PermissionDenied(f"the registry {self.endpoint.host} gave no usable token realm ({realm!r})")
        service = challenge.params.get("service", "")
        try:
            if self.credentials.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": self.credentials.identity_token,
                        "service": service, "scope": " ".join(scopes), "client_id": "kran"}
                response = await self._http.post(realm, data=form)
            else:
                params = [("service", service)] if service else []
                params += [("scope", scope) for scope in scopes]
                headers = {"Authorization": self.credentials.basic()} if self.credentials else {}
                response = await self._http.get(realm, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise self._transport_error("GET", realm, exc) from None
        if response.status_code in (401, 403):
            codes = error_codes(response.content)
            detail = RegistryError(response.status_code, response.reason_phrase, codes).text() if codes else \
                "unauthorized: incorrect username or password"
            raise errors.PermissionDenied(detail)
        if response.status_code != 200:
            raise errors.Unavailable(f'Get "{realm}": token server answered {response.status_code} '
                                     f"{response.reason_phrase}")
        try:
            return token_from_response(response.json())
        except ValueError:
            raise errors.PermissionDenied("the registry's token server answered no JSON") from None

    # Requests.

    def _transport_error(self, method: str, url: str, exc: BaseException) -> errors.KranError:
        reason, kind = _describe(exc)
        message = f'{method.title()} "{url}": {reason}'
        if kind is ssl.SSLCertVerificationError:
            return errors.Unavailable(f"{message} ({self.endpoint.trust_hint()})")
        if kind is ssl.SSLError or isinstance(exc, httpx.ConnectError):
            return Unreachable(message)
        return errors.Unavailable(message)

    async def send(self, method: str, path: str, *, scopes: tuple[str, ...] = (),
                   headers: Mapping[str, str] | None = None, content: Any = None,
                   params: Mapping[str, str] | None = None) -> httpx.Response:
        """Send a request and return the response with its body unread (stream it or aread()).

        The caller closes the response (`await response.aclose()`). A 401 is
        retried once with fresh credentials; what is still refused comes
        back as the response. Transport failures raise errors.Unavailable
        (Unreachable when another endpoint may work).
        """
        url = self.url(path)
        if params:  # merged, as an upload's Location carries query parameters of its own
            url = str(httpx.URL(url).copy_merge_params(dict(params)))
        retryable = content is None or isinstance(content, (bytes, str))
        fresh = False
        for _ in range(MAX_REDIRECTS + 1):
            own = _origin(url) == _origin(self.endpoint.url)
            request_headers = dict(headers or {})
            if own:
                authorization = await self._authorization(scopes, fresh)
                if authorization:
                    request_headers["Authorization"] = authorization
            request = self._http.build_request(method, url, headers=request_headers, content=content)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                raise self._transport_error(method, str(request.url), exc) from None
            if response.status_code == 401 and own and retryable and not fresh:
                await response.aread()
                challenges = parse_challenges(response.headers.get("www-authenticate", ""))
                usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
                if usable and (self.credentials or usable[0].scheme == "bearer"):
                    self.challenge = usable[0]
                    fresh = True
                    await response.aclose()
                    continue
                return response
            if response.status_code in _REDIRECTS and method in ("GET", "HEAD") \
                    and response.headers.get("location"):
                await response.aclose()
                url = urljoin(str(request.url), response.headers["location"])
                continue
            return response
        raise errors.Unavailable(f'{method.title()} "{url}": stopped after {MAX_REDIRECTS} redirects')

    async def call(self, method: str, path: str, *, scopes: tuple[str, ...] = (),
                   expect: tuple[int, ...] = (200,), headers: Mapping[str, str] | None = None,
                   content: Any = None, params: Mapping[str, str] | None = None,
                   limit: int = MAX_ERROR_BODY) -> httpx.Response:
        """send() and read the body (at most `limit` bytes); RegistryError unless the status is expected."""
        response = await self.send(method, path, scopes=scopes, headers=headers, content=content, params=params)
        try:
            length = response.headers.get("content-length")
            if method != "HEAD" and length and length.isdigit() and int(length) > limit:
                raise errors.InvalidArgument(f"the registry's answer to {method} {path} is {length} bytes, "
                                             f"more than the {limit} allowed")
            if not response.is_stream_consumed:  # send() may have read a refusal already
                body = bytearray()
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) > limit:
                        raise errors.InvalidArgument(f"the registry's answer to {method} {path} is more than "
                                                     f"the {limit} bytes allowed")
                response._content = bytes(body)  # so .content, .json() work after the stream
        except httpx.TransportError as exc:
            raise self._transport_error(method, str(response.request.url), exc) from None
        finally:
            await response.aclose()
        if response.status_code not in expect:
            raise RegistryError(response.status_code, response.reason_phrase, error_codes(response.content))
        return response

    async def ping(self) -> None:
        """GET /v2/: learn how the registry authenticates; errors.Unavailable if it is no v2 registry."""
        response = await self.send("GET", "/v2/")
        try:
            await response.aread()
        finally:
            await response.aclose()
        if response.status_code == 401:
            challenges = parse_challenges(response.headers.get("www-authenticate", ""))
            usable = [c for c in challenges if c.scheme in ("bearer", "basic")]
            self.challenge = usable[0] if usable else None
        elif response.status_code != 200:
            raise Unreachable(f'Get "{self.url("/v2/")}": the server answered {response.status_code} '
                              f"{response.reason_phrase}; it is not a registry (API v2)")

    async def chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        """The raw body of a streamed response; transport failures as errors.Unavailable."""
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            raise self._transport_error(response.request.method, str(response.request.url), exc) from None


async def connect(domain: str, options: RegistryOptions, credentials: Credentials, *,
                  pull: bool) -> RegistryClient:
    """A client for the first endpoint of `domain` that answers as a registry (the caller closes it)."""
    candidates = endpoints(domain, options, pull=pull)
    failure: errors.KranError | None = None
    for endpoint in candidates:
        client = RegistryClient(endpoint, credentials)
        try:
            await client.ping()
            return client
        except Unreachable as exc:
            await client.close()
            failure = failure or exc
        except BaseException:
            await client.close()
            raise
    assert failure is not None
    raise errors.Unavailable(failure.message)
