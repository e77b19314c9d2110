"""An identity provider's key set (``GATEWAY_JWT_JWKS_URL``), fetched and kept fresh.

Theory of operation. :meth:`KeySet.run` is the app's background task (started on
start-up, cancelled on cleanup): it fetches the set at once, then again when its
``Cache-Control: max-age`` runs out (bounded to REFRESH_BOUNDS; REFRESH_DEFAULT
without one), and after a failure with a doubling delay up to COOLDOWN. A failed
fetch keeps the keys fetched before and logs one warning line (the URL without its
user, password or query; no traceback); the gateway runs on regardless.

A token whose kid the set lacks (a rotation the gateway has not seen yet), or any
token while no set has been fetched, asks :meth:`KeySet.refetch` for a fetch ahead
of time: at most one such fetch per COOLDOWN, whatever the number of tokens, so
tokens with made-up kids cannot make the gateway hammer the provider. Every fetch,
whoever asked, is the one in flight if there is one. The requests that asked wait
for it, then are checked again against what it brought.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import Awaitable

import aiohttp
from yarl import URL

from .keys import Keyring, describe, keyring_from_jwks

COOLDOWN = 30.0  # seconds between fetches asked by tokens; the longest wait after a failure
REFRESH_DEFAULT = 300.0  # seconds between regular fetches when the answer has no max-age
REFRESH_BOUNDS = (60.0, 3600.0)  # max-age is held within these: no busy loop, no key kept a day
FETCH_TIMEOUT = 5.0  # seconds a fetch may take, connecting included
FIRST_RETRY = 1.0
MAX_BYTES = 1 << 20  # a key set is a few kB

log = logging.getLogger(__name__)

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|=|$)", re.IGNORECASE)


def refresh_delay(cache_control: str | None, bounds: tuple[float, float] = REFRESH_BOUNDS) -> float:
    """Seconds until the next regular fetch, from the answer's Cache-Control header."""
    low, high = bounds
    if cache_control is None:
        return min(max(REFRESH_DEFAULT, low), high)
    if _NO_CACHE.search(cache_control):
        return low
    found = _MAX_AGE.search(cache_control)
    if found is None:
        return min(max(REFRESH_DEFAULT, low), high)
    return min(max(float(found.group(1)), low), high)


def shown_url(url: str) -> str:
    """The URL as a log line may show it: no user, password, query or fragment."""
    parsed = URL(url)
    return str(parsed.with_user(None).with_query(None).with_fragment(None))


class KeySet:
    """The keys of one JWKS URL, as last fetched; ``keyring`` is None until a fetch succeeds."""

    def __init__(
        self,
        url: str,
        *,
        cooldown: float = COOLDOWN,
        refresh_bounds: tuple[float, float] = REFRESH_BOUNDS,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.url = url
        self.shown = shown_url(url)
        self.keyring: Keyring | None = None
        self.failing = False  # the last fetch failed (the keys, if any, are from before)
        self._cooldown = cooldown
        self._bounds = refresh_bounds
        self._timeout = timeout
        self._http: aiohttp.ClientSession | None = None
        self._inflight: asyncio.Task[float | None] | None = None
        self._asked_at = -math.inf  # when a token last asked for a fetch (loop time)
        self._next_at = 0.0  # when the background task fetches next (loop time)

    async def run(self) -> None:
        """The background task: fetch, wait, fetch again, until cancelled."""
        loop = asyncio.get_running_loop()
        retry = FIRST_RETRY
        # trust_env: HTTPS_PROXY and NO_PROXY apply, as they do to curl in the same container.
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as http:
            self._http = http
            try:
                while True:
                    delay = await asyncio.shield(self._fetch())  # a request may be waiting for it too
                    if delay is None:
                        delay, retry = retry, min(retry * 2, self._cooldown)
                    else:
                        retry = FIRST_RETRY
                    self._next_at = loop.time() + delay
                    await asyncio.sleep(delay)
            finally:
                self._http = None
                if self._inflight is not None:
                    self._inflight.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._inflight

    def refetch(self) -> Awaitable[object] | None:
        """A fetch ahead of time for a token the keys cannot check; None when one was asked
        less than the cooldown ago (then the keys are what they are)."""
        loop = asyncio.get_running_loop()
        if self._http is None or loop.time() - self._asked_at < self._cooldown:
            return None
        self._asked_at = loop.time()
        # Shielded: a client that leaves while waiting cancels its wait, not the fetch.
        return asyncio.shield(self._fetch())

    def retry_after(self) -> int:
        """Whole seconds until the next fetch (at least 1), for a 503's Retry-After."""
        loop = asyncio.get_running_loop()
        return max(1, math.ceil(self._next_at - loop.time()))

    def _fetch(self) -> asyncio.Task[float | None]:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self._fetch_once(), name="gateway-jwks-fetch")
        return self._inflight

    async def _fetch_once(self) -> float | None:
        """One fetch: the delay until the next regular one, or None if it failed."""
        assert self._http is not None
        try:
            async with self._http.get(self.url, headers={"Accept": "application/json"}) as response:
                if response.status != 200:
                    raise ValueError(f"HTTP {response.status} {response.reason or ''}".rstrip())
                body = await response.content.read(MAX_BYTES + 1)
                if len(body) > MAX_BYTES:
                    raise ValueError(f"the answer is over {MAX_BYTES} bytes")
                cache_control = response.headers.get("Cache-Control")
        except TimeoutError:  # before OSError, whose subclass it is
            self._failed(f"no answer within {self._timeout:g} s")
            return None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            self._failed(str(exc) or type(exc).__name__)
            return None
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError; nested too deep
            self._failed("the answer is not JSON")
            return None
        try:
            keyring, skipped = keyring_from_jwks(document)
        except ValueError as exc:
            self._failed(str(exc))
            return None
        except Exception as exc:  # whatever a strange key does to a key parser: still only a bad answer
            self._failed(f"the answer is not a usable key set ({type(exc).__name__}: {exc})")
            return None
        if self.keyring is None or self.failing or keyring.kids != self.keyring.kids:
            log.info("JWT key set %s: %s", self.shown, describe(keyring.keys))
        if skipped:
            log.debug("JWT key set %s: left out %s", self.shown, "; ".join(skipped))
        self.keyring, self.failing = keyring, False
        return refresh_delay(cache_control, self._bounds)

    def _failed(self, reason: str) -> None:
        self.failing = True
        then = (
            f"keeping the {len(self.keyring.keys)} key(s) fetched before"
            if self.keyring is not None
            else "tokens are answered 503 until a fetch succeeds"
        )
        log.warning("JWT key set %s could not be fetched: %s; %s", self.shown, reason, then)
