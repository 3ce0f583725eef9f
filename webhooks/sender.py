"""One try of one webhook: a POST to an endpoint's URL, safe against the URL's owner.

A URL is anybody's to type, so the try refuses what would let it reach inside the
shop's own network (docs/webhooks.md): the host is resolved here, every address it
has is checked, and the connection goes to the address checked, never to a second
lookup of the name (DNS rebinding). Redirects are not followed (a public URL could
send the worker to a private one), nothing is retried inside a try, the whole try has
one deadline however slowly the answer drips, and only the start of the answer is read.
"""

import contextlib
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext

ANSWER_READ_BYTES = 64 * 1024
EXCERPT_BYTES = 1024
READ_CHUNK_BYTES = 4096
ERROR_MAX_LENGTH = 255


@dataclass(frozen=True)
class TryResult:
    """What one try came to: the answer's status, or why there was none."""

    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""


class TryFailed(Exception):
    """The try was not made, or was given up: the message says why, for staff."""


def endpoint_post(*, url: str, body: bytes, headers: dict[str, str]) -> TryResult:
    """POST `body` to `url` once, within settings.WEBHOOKS_TIMEOUT_SECONDS."""
    started_at = timezone.now()
    clock = time.monotonic()
    try:
        status_code, error, excerpt = _post(url=url, body=body, headers=headers, clock=clock)
    except TryFailed as failure:
        status_code, error, excerpt = None, str(failure), ""
    return TryResult(
        started_at=started_at,
        duration_ms=round((time.monotonic() - clock) * 1000),
        status_code=status_code,
        error=error[:ERROR_MAX_LENGTH],
        excerpt=excerpt,
    )


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


DEFAULT_PORTS = {"https": 443, "http": 80}


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TryFailed(gettext("refused: the URL is not valid")) from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and settings.WEBHOOKS_ALLOW_HTTP):
        raise TryFailed(gettext("refused: only https URLs are allowed"))
    if not parts.hostname:
        raise TryFailed(gettext("refused: the URL has no host"))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, parts.hostname, port or DEFAULT_PORTS[scheme], path)


def _post(*, url: str, body: bytes, headers: dict, clock: float) -> tuple[int, str, str]:
    seconds = settings.WEBHOOKS_TIMEOUT_SECONDS
    deadline = clock + seconds
    target = _target(url)
    address = _checked_address(target.host, target.port)
    pool = _pool(target=target, address=address, deadline=deadline)
    # A drip of bytes resets a socket's timeout at each one: this timer ends the try at
    # the deadline whatever the socket is doing, by shutting it down.
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0), pool.deadline_reached)
    watchdog.daemon = True
    watchdog.start()
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": target.host_header},
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=False,
            timeout=urllib3.Timeout(total=max(deadline - time.monotonic(), 0.001)),
        )
        answer = _answer_start(response)
        response.close()
    except (urllib3.exceptions.HTTPError, OSError) as failure:
        raise TryFailed(_failure_text(failure, pool.timed_out, seconds)) from None
    finally:
        watchdog.cancel()
        pool.close()
    if pool.timed_out:
        raise TryFailed(gettext("timed out after %(seconds)s s") % {"seconds": seconds})
    excerpt = answer[:EXCERPT_BYTES].decode("utf-8", errors="replace")
    error = ""
    if 300 <= response.status < 400:
        error = gettext("redirects are not followed")
    return response.status, error, excerpt


def _answer_start(response) -> bytes:
    """The first ANSWER_READ_BYTES of the body; the rest is never read."""
    answer = b""
    while len(answer) < ANSWER_READ_BYTES:
        chunk = response.read1(min(READ_CHUNK_BYTES, ANSWER_READ_BYTES - len(answer)))
        if not chunk:
            break
        answer += chunk
    return answer


def _failure_text(failure: Exception, timed_out: bool, seconds: int) -> str:
    # Before the timeouts: urllib3's NewConnectionError is a kind of ConnectTimeoutError.
    if isinstance(failure, urllib3.exceptions.NewConnectionError) and not timed_out:
        return gettext("could not connect: %(reason)s") % {"reason": _reason(failure)}
    if timed_out or isinstance(failure, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return gettext("timed out after %(seconds)s s") % {"seconds": seconds}
    if isinstance(failure, urllib3.exceptions.SSLError):
        return gettext("TLS failed: %(reason)s") % {"reason": _reason(failure)}
    return gettext("the connection failed: %(reason)s") % {"reason": _reason(failure)}


def _reason(failure: Exception) -> str:
    """The innermost cause's own words, without urllib3's wrapping of them."""
    while failure.__context__ is not None and failure.__context__ is not failure:
        failure = failure.__context__
    return str(getattr(failure, "reason", None) or failure) or type(failure).__name__


# --- The address --------------------------------------------------------------------


def _refusal_texts():
    """Why an address is refused, the first that applies, in this order."""
    return [
        (lambda a: a.is_unspecified, gettext("refused: %(address)s is an unspecified address")),
        (lambda a: a.is_loopback, gettext("refused: %(address)s is a loopback address")),
        (lambda a: a.is_link_local, gettext("refused: %(address)s is a link-local address")),
        (lambda a: a.is_multicast, gettext("refused: %(address)s is a multicast address")),
        (lambda a: a.is_reserved, gettext("refused: %(address)s is a reserved address")),
        (lambda a: a.is_private, gettext("refused: %(address)s is a private address")),
        # Left: shared address space (100.64.0.0/10) and the like, public to nobody.
        (lambda a: not a.is_global, gettext("refused: %(address)s is not a public address")),
    ]


def address_refusal(host: str) -> str | None:
    """Why every try to `host` would be refused for the addresses it has now, or None;
    None too while it does not resolve (its name may be set up later)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return None
    for _family, _type, _proto, _name, sockaddr in infos:
        try:
            _refuse_unless_allowed(ipaddress.ip_address(sockaddr[0].split("%")[0]))
        except TryFailed as refused:
            return str(refused)
    return None


def _checked_address(host: str, port: int) -> str:
    """The address to connect to: every address the host has must be allowed, so a
    name cannot pair a public address with a private one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise TryFailed(gettext("could not resolve %(host)s") % {"host": host}) from None
    addresses = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0].split("%")[0])
        _refuse_unless_allowed(address)
        addresses.append(str(address))
    if not addresses:
        raise TryFailed(gettext("could not resolve %(host)s") % {"host": host})
    return addresses[0]


def _refuse_unless_allowed(address) -> None:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if any(address in network for network in _allowed_networks()):
        return
    for applies, text in _refusal_texts():
        if applies(address):
            raise TryFailed(text % {"address": address})


def _allowed_networks():
    return [
        ipaddress.ip_network(network, strict=False)
        for network in settings.WEBHOOKS_ALLOWED_NETWORKS
    ]


# --- The connection -----------------------------------------------------------------


class _DeadlineMixin:
    """A pool whose connections it can shut down from the watchdog's thread."""

    def _setup(self):
        self.timed_out = False
        self._sockets = []
        self._lock = threading.Lock()
        pool = self

        class Connection(self.ConnectionCls):
            def connect(self):
                super().connect()
                with pool._lock:
                    pool._sockets.append(self.sock)
                    if pool.timed_out:
                        _shut(self.sock)

        self.ConnectionCls = Connection

    def deadline_reached(self):
        with self._lock:
            self.timed_out = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _HTTPPool(_DeadlineMixin, urllib3.HTTPConnectionPool):
    pass


class _HTTPSPool(_DeadlineMixin, urllib3.HTTPSConnectionPool):
    pass


def _pool(*, target: _Target, address: str, deadline: float):
    timeout = urllib3.Timeout(total=max(deadline - time.monotonic(), 0.001))
    common = {"port": target.port, "maxsize": 1, "retries": False, "timeout": timeout}
    if target.scheme == "https":
        # The connection goes to the checked address; the certificate must be the host's.
        pool = _HTTPSPool(
            address,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
            **common,
        )
    else:
        pool = _HTTPPool(address, **common)
    pool._setup()
    return pool
