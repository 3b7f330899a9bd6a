"""Downloading a URL the bridge was handed, without letting that URL reach into the bridge's own network.

A `file_operator` URL comes from the agent's script, so it is outside input: fetched naively, it could point the
bridge at its Redis, at an admin panel on the private network or at the cloud metadata endpoint
(169.254.169.254) and hand what comes back to a visitor. So the guard here:

- accepts only http and https;
- resolves the host itself (through an injectable resolver) and refuses loopback, private, link-local,
  multicast, unspecified, shared (CGNAT) and reserved addresses, IPv4 and IPv6 alike, IPv4 addresses embedded
  in IPv6 included, unless the operator allow-listed their network (`files.allow_private_networks`); a name
  with any refused address is refused whole;
- connects to exactly the address it checked: the URL's host is replaced by that address, while the `Host`
  header, TLS SNI and certificate verification keep the name, so a DNS answer that changes between the check
  and the connection (DNS rebinding) cannot redirect it;
- follows redirects itself, checking every hop again, with a fresh client per hop (a pooled TLS connection
  made for one name must not serve another name that shares the address);
- limits the size (`Content-Length` and the bytes actually streamed), each network operation (timeout) and
  the whole download (deadline); ignores proxy settings from the environment, which would bypass the pin.

Every refusal raises `FetchRefused` with a plain reason and logs one line; the URL is logged without its query
string or credentials, which may hold secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

import httpx

from bridge._errors import describe_error
from bridge.fetch_policy import (
    IPAddress,
    IPNetwork,
    address_refusal,
    embedded_ipv4,
    literal_address,
    parse_networks,
)

if TYPE_CHECKING:
    from bridge.config import FilesConfig

__all__ = [
    "FetchError",
    "FetchFailed",
    "FetchRefused",
    "FetchStream",
    "FetchedFile",
    "IPAddress",
    "IPNetwork",
    "Resolver",
    "SafeFetcher",
    "address_refusal",
    "parse_networks",
    "system_resolver",
]

# (host, port) → the host's addresses as strings; raises OSError when the name does not resolve.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})
_CHUNK: Final = 64 * 1024

log = logging.getLogger("bridge.fetch")


class FetchError(Exception):
    """A URL could not be downloaded."""


class FetchRefused(FetchError):
    """The guard would not download the URL: its scheme, its address, a redirect, or its size. Retrying
    cannot help."""

    def __init__(self, reason: str, *, url: str = "") -> None:
        super().__init__(f"refused to fetch {url}: {reason}" if url else f"refused to fetch: {reason}")
        self.reason = reason
        self.url = url


class FetchFailed(FetchError):
    """The download was allowed but did not succeed (network, timeout, an error status). `retryable` says
    whether the failure may well pass (a timeout, a 5xx) or not (a 404)."""

    def __init__(self, reason: str, *, url: str = "", retryable: bool, status: int | None = None) -> None:
        super().__init__(f"could not fetch {url}: {reason}" if url else f"could not fetch: {reason}")
        self.reason = reason
        self.url = url
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True, slots=True)
class FetchedFile:
    """A whole download. `url` is the last hop's (shown without query); `name` comes from the answer's
    `Content-Disposition` or else the URL's last path segment."""

    url: str
    data: bytes
    content_type: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class FetchStream:
    """A download being streamed: `chunks` is consumed once and raises `FetchRefused` past the size limit."""

    url: str
    size: int | None
    content_type: str | None
    name: str | None
    chunks: AsyncIterator[bytes]


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _shown(url: httpx.URL) -> str:
    """`url` fit for a log line or an error: no credentials, no query, no fragment."""
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


def _name_of(response: httpx.Response, url: httpx.URL) -> str | None:
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        name = message.get_filename()
        if name:
            return name.replace("\\", "/").rsplit("/", 1)[-1] or None
    last = unquote(url.path.rsplit("/", 1)[-1])
    return last or None


@dataclass(frozen=True, slots=True)
class _Target:
    url: httpx.URL
    addresses: tuple[IPAddress, ...]


class SafeFetcher:
    """Downloads URLs through the guard described above. Cheap to build (no I/O until a fetch), safe to share.

    `resolver` defaults to the system's; tests inject one that maps names to loopback addresses without DNS.
    `verify` is passed to httpx (an `ssl.SSLContext` trusting a test CA, say)."""

    def __init__(
        self,
        *,
        max_size: int = 20 * 1024 * 1024,
        allow_networks: Iterable[str | IPNetwork] = (),
        resolver: Resolver | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        deadline: float = 120.0,
        max_redirects: int = 5,
        verify: ssl.SSLContext | bool = True,
        user_agent: str = "omnichannel-bridge",
        logger: logging.Logger | None = None,
    ) -> None:
        if max_size <= 0 or timeout <= 0 or connect_timeout <= 0 or deadline <= 0 or max_redirects < 0:
            raise ValueError("max_size, timeout, connect_timeout and deadline must be positive, max_redirects >= 0")
        self.max_size = max_size
        self.allow_networks = tuple(
            n if isinstance(n, IPv4Network | IPv6Network) else parse_networks([n])[0] for n in allow_networks
        )
        self._resolve = resolver or system_resolver
        self._timeout = httpx.Timeout(timeout, connect=min(connect_timeout, timeout))
        self.deadline = deadline
        self.max_redirects = max_redirects
        self._verify = verify
        self._user_agent = user_agent
        self.log = logger or log

    @classmethod
    def from_config(
        cls, files: FilesConfig, *, resolver: Resolver | None = None, logger: logging.Logger | None = None
    ) -> SafeFetcher:
        return cls(
            max_size=int(files.max_size_mb * 1024 * 1024),
            allow_networks=files.allow_private_networks,
            resolver=resolver,
            timeout=files.fetch_timeout,
            deadline=files.fetch_deadline,
            max_redirects=files.fetch_max_redirects,
            logger=logger,
        )

    # ------------------------------------------------------------------ the guard

    def _refuse(self, reason: str, url: httpx.URL | None) -> FetchRefused:
        shown = _shown(url) if url is not None else ""
        self.log.warning("file download refused", extra={"url": shown, "reason": reason})
        return FetchRefused(reason, url=shown)

    def _allowed(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, IPv6Address) and (embedded := embedded_ipv4(ip)) is not None:
            candidates.append(embedded)
        return any(c.version == n.version and c in n for c in candidates for n in self.allow_networks)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why `ip` is refused under this fetcher's allow-list (None: it may be connected to)."""
        return None if self._allowed(ip) else address_refusal(ip)

    async def check(self, url: str | httpx.URL) -> tuple[IPAddress, ...]:
        """The addresses `url` may be fetched from, or `FetchRefused`; never connects anywhere."""
        return (await self._target(url)).addresses

    async def _target(self, raw: str | httpx.URL) -> _Target:
        try:
            url = raw if isinstance(raw, httpx.URL) else httpx.URL(raw)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise self._refuse(f"not a valid URL ({exc})", None) from None
        if url.scheme not in _DEFAULT_PORTS:
            raise self._refuse(f"only http and https URLs are fetched, not {url.scheme or 'no scheme'!r}", url)
        host = url.host
        if not host:
            raise self._refuse("the URL has no host", url)
        port = url.port or _DEFAULT_PORTS[url.scheme]
        literal = literal_address(host)
        if literal is not None:
            addresses: tuple[IPAddress, ...] = (literal,)
        else:
            try:
                found = await self._resolve(host, port)
            except OSError as exc:
                raise FetchFailed(f"{host} does not resolve ({exc})", url=_shown(url), retryable=True) from None
            try:
                addresses = tuple(ip_address(str(a).split("%", 1)[0]) for a in dict.fromkeys(found))
            except ValueError:
                raise self._refuse(f"the resolver gave a non-address for {host}", url) from None
            if not addresses:
                raise FetchFailed(f"{host} has no address", url=_shown(url), retryable=True)
        for ip in addresses:
            why = self.refusal(ip)
            if why is not None:
                named = str(ip) if literal is not None else f"{host} resolves to {ip}, which"
                raise self._refuse(f"{named} is {why}", url)
        return _Target(url, addresses)

    # ------------------------------------------------------------------ downloading

    async def fetch(self, url: str, *, max_size: int | None = None) -> FetchedFile:
        """The whole body of `url` in memory, at most `max_size` bytes (and never more than `self.max_size`)."""
        async with self.open(url, max_size=max_size) as stream:
            data = bytearray()
            async for chunk in stream.chunks:
                data.extend(chunk)
        return FetchedFile(url=stream.url, data=bytes(data), content_type=stream.content_type, name=stream.name)

    @contextlib.asynccontextmanager
    async def open(self, url: str, *, max_size: int | None = None) -> AsyncIterator[FetchStream]:
        """Stream `url` after the guard let every hop through. Raises `FetchRefused` or `FetchFailed`."""
        limit = min(max_size, self.max_size) if max_size else self.max_size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline
        current: str | httpx.URL = url
        async with contextlib.AsyncExitStack() as stack:
            for _hop in range(self.max_redirects + 1):
                target = await self._target(current)
                hop = contextlib.AsyncExitStack()
                try:
                    async with asyncio.timeout_at(deadline):
                        response = await self._connect(hop, target)
                except TimeoutError:
                    await hop.aclose()
                    raise FetchFailed(f"no answer within {self.deadline:g}s", url=_shown(target.url),
                                      retryable=True) from None
                except BaseException:
                    await hop.aclose()
                    raise
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    await hop.aclose()
                    try:
                        current = target.url.join(location)
                    except (httpx.InvalidURL, ValueError):
                        raise self._refuse("a redirect to an invalid URL", target.url) from None
                    continue
                stack.push_async_callback(hop.aclose)
                yield self._stream(response, target.url, limit, deadline)
                return
            raise self._refuse(f"more than {self.max_redirects} redirects", httpx.URL(str(current)))

    async def _connect(self, hop: contextlib.AsyncExitStack, target: _Target) -> httpx.Response:
        """The answer from the first of the checked addresses that accepts a connection."""
        url = target.url
        host = url.host
        headers = {
            "Host": url.netloc.decode("ascii"),
            "User-Agent": self._user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "identity",
        }
        extensions = {"sni_hostname": host} if url.scheme == "https" and literal_address(host) is None else {}
        failure = "no address to connect to"
        for ip in target.addresses:
            # One client per hop and address: its pool must never hand this connection to another name.
            client = await hop.enter_async_context(
                httpx.AsyncClient(timeout=self._timeout, verify=self._verify, trust_env=False, follow_redirects=False)
            )
            pinned = url.copy_with(host=str(ip))
            request = client.build_request("GET", pinned, headers=headers, extensions=extensions)
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError as exc:
                failure = f"could not connect to {ip} ({exc})"
                continue
            except httpx.TimeoutException as exc:
                raise FetchFailed(f"timed out ({type(exc).__name__})", url=_shown(url), retryable=True) from None
            except httpx.HTTPError as exc:
                raise FetchFailed(describe_error(exc), url=_shown(url), retryable=True) from None
            hop.push_async_callback(response.aclose)
            return response
        raise FetchFailed(failure, url=_shown(url), retryable=True)

    def _stream(self, response: httpx.Response, url: httpx.URL, limit: int, deadline: float) -> FetchStream:
        status = response.status_code
        if not 200 <= status < 300 or status in (204, 206):
            retryable = status >= 500 or status in _RETRYABLE_STATUS
            raise FetchFailed(f"the server answered HTTP {status}", url=_shown(url), retryable=retryable,
                              status=status)
        length = response.headers.get("content-length")
        size = int(length) if length is not None and length.isdigit() else None
        if size is not None and size > limit:
            raise self._refuse(f"the file is {size} bytes; the limit is {limit} bytes", url)
        content_type = (response.headers.get("content-type") or "").split(";", 1)[0].strip() or None
        return FetchStream(
            url=_shown(url),
            size=size,
            content_type=content_type,
            name=_name_of(response, url),
            chunks=self._chunks(response, url, limit, deadline),
        )

    async def _chunks(
        self, response: httpx.Response, url: httpx.URL, limit: int, deadline: float
    ) -> AsyncIterator[bytes]:
        received = 0
        chunks = response.aiter_bytes(_CHUNK)
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise FetchFailed(f"not downloaded within {self.deadline:g}s", url=_shown(url),
                                  retryable=True) from None
            except httpx.HTTPError as exc:
                raise FetchFailed(f"download interrupted ({type(exc).__name__})", url=_shown(url),
                                  retryable=True) from None
            received += len(chunk)
            if received > limit:
                raise self._refuse(f"the file is larger than the limit of {limit} bytes", url)
            yield chunk
