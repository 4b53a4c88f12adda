"""HTTP client for the Qovery API: session, authentication, retries and typed errors.

Every request of a run goes through one `QoveryClient`, so the request count it keeps is the
number of requests the run spent from the token's budget (about 1000 per hour).
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Mapping
from urllib.parse import urlsplit

import requests

from qovery_backups import settings
from qovery_backups.pacing import RequestPacer

logger = logging.getLogger(__name__)

AuthScheme = Literal["Token", "Bearer"]

_JWT_PART = r"[A-Za-z0-9_-]+"
_JWT_PATTERN = re.compile(rf"^{_JWT_PART}\.{_JWT_PART}\.{_JWT_PART}$")

RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
BODY_EXCERPT_CHARS = 200


class QoveryError(Exception):
    """A failed call to the Qovery API.

    Attributes:
        status: HTTP status code, or None when no response arrived.
        path: endpoint path without its query string.
        body_excerpt: the first characters of the response body, for diagnosis.
        hint: what the user should do about it.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        path: str = "",
        body_excerpt: str = "",
        hint: str = "",
    ) -> None:
        self.status = status
        self.path = path
        self.body_excerpt = body_excerpt
        self.hint = hint
        details = [message]
        if body_excerpt:
            details.append(f"Response body: {body_excerpt!r}.")
        if hint:
            details.append(hint)
        super().__init__(" ".join(details))


class QoveryConfigurationError(QoveryError):
    """Invalid settings, detected before any request is sent."""


class QoveryAuthenticationError(QoveryError):
    """401: the token is missing, invalid or expired. Fatal for the whole run."""


class QoveryForbiddenError(QoveryError):
    """403: the token may not read this resource."""


class QoveryNotFoundError(QoveryError):
    """404: the resource does not exist, or its backups are not served by Qovery."""


class QoveryRetriableError(QoveryError):
    """A failure that may pass on its own (429, 5xx, dropped connection, bad body).

    Raised once the retry budget is spent. `retry_after` is the wait in seconds the server
    asked for, when it asked.
    """

    retry_after: float | None = None


class QoveryResponseError(QoveryError):
    """A response whose shape the connector cannot use."""


def detect_auth_scheme(token: str) -> AuthScheme:
    """Choose the Authorization scheme for a token.

    A JWT (three dot-separated base64url parts) is sent as `Bearer`; anything else, such as the
    `qov_…` API tokens from the Qovery console, is sent as `Token`.
    """
    return "Bearer" if _JWT_PATTERN.match(token) else "Token"


class QoveryAuth(requests.auth.AuthBase):
    """Adds `Authorization: <scheme> <token>` to each request without exposing the token."""

    def __init__(self, token: str, scheme: AuthScheme | None = None) -> None:
        self._token = token
        self.scheme: AuthScheme = scheme or detect_auth_scheme(token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"{self.scheme} {self._token}"
        return request

    def __repr__(self) -> str:
        return f"QoveryAuth(scheme={self.scheme!r}, token=<redacted>)"


@dataclass
class RequestStats:
    """Requests one client sent, retries among them, and time spent waiting.

    `waited_seconds` is the backoff before retries and `paced_seconds` the pauses that kept
    the run under its request budget.

    `by_category` splits `requests` by what they were for (`discovery`, `backups`).
    """

    requests: int = 0
    retries: int = 0
    waited_seconds: float = 0.0
    paced_seconds: float = 0.0
    by_category: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryPolicy:
    """How the client retries 429, 5xx, dropped connections and unreadable bodies.

    Attributes:
        max_attempts: attempts per request, the first one included.
        backoff_seconds: the first wait; each later wait doubles, with up to 50% jitter added.
        max_wait_seconds: the maximum single wait, `Retry-After` included.
        max_total_wait_seconds: the most one request may spend waiting across its retries.
    """

    max_attempts: int = 5
    backoff_seconds: float = 1.0
    max_wait_seconds: float = 120.0
    max_total_wait_seconds: float = 600.0


class QoveryClient:
    """Requests to one Qovery API base URL with one token.

    Thread-safe: each thread gets its own requests session, and the counters and the pacer
    are shared under locks.
    """

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        auth_scheme: AuthScheme | None = None,
        connect_timeout: float = settings.CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = settings.READ_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
        pacer: RequestPacer | None = None,
        sleep=time.sleep,
    ) -> None:
        self.base_url = validate_base_url(base_url)
        if not api_token or not api_token.strip():
            raise QoveryConfigurationError(
                "The Qovery API token is empty.",
                hint="Set SOURCES__QOVERY__API_TOKEN or api_token under [sources.qovery] "
                "in .dlt/secrets.toml.",
            )
        self.timeout = (connect_timeout, read_timeout)
        self.pacer = pacer or RequestPacer(settings.REQUESTS_PER_HOUR)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._auth = QoveryAuth(api_token.strip(), auth_scheme)
        # One session per thread: requests does not promise that a Session is thread-safe,
        # and databases are read from several threads.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self.stats = RequestStats()

    @property
    def auth_scheme(self) -> AuthScheme:
        return self._auth.scheme

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.auth = self._auth
            session.headers.update({"Accept": "application/json", "User-Agent": settings.USER_AGENT})
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def get_json(
        self, path: str, params: Mapping[str, str] | None = None, category: str = "backups"
    ) -> Any:
        """Send a GET request and return the decoded JSON body, retrying transient failures.

        `category` only labels the request in `stats.by_category`.

        Raises:
            QoveryAuthenticationError: on 401.
            QoveryForbiddenError: on 403.
            QoveryNotFoundError: on 404.
            QoveryRetriableError: when 429, 5xx, connection failures or unreadable bodies
                persist beyond the retry policy.
            QoveryError: on any other unexpected status.
        """
        url = self.base_url + path
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send(url, path, params, category)
            except QoveryRetriableError as error:
                wait = self._retry_wait(error, attempt)
                if attempt >= self.retry.max_attempts or waited + wait > self.retry.max_total_wait_seconds:
                    logger.error(
                        "Giving up on GET %s after %d attempts: %s", path, attempt, error
                    )
                    raise
                logger.warning(
                    "GET %s failed (attempt %d of %d, status %s); retrying in %.1f s",
                    path,
                    attempt,
                    self.retry.max_attempts,
                    error.status if error.status is not None else "none",
                    wait,
                )
                with self._lock:
                    self.stats.retries += 1
                    self.stats.waited_seconds += wait
                waited += wait
                self._sleep(wait)

    def _send(
        self, url: str, path: str, params: Mapping[str, str] | None, category: str
    ) -> Any:
        paced = self.pacer.acquire()
        with self._lock:
            self.stats.requests += 1
            self.stats.by_category[category] = self.stats.by_category.get(category, 0) + 1
            self.stats.paced_seconds += paced
        logger.debug("GET %s %s", path, dict(params or {}))
        try:
            response = self._session().get(
                url, params=params, timeout=self.timeout, allow_redirects=False
            )
        except (requests.ConnectionError, requests.Timeout) as error:
            raise QoveryRetriableError(
                f"GET {path} failed before a response arrived: {type(error).__name__}.",
                path=path,
                hint="If this persists, check that base_url is reachable from this machine "
                "and raise connect_timeout or read_timeout for a slow network.",
            ) from None
        self.pacer.observe(
            response.headers.get("X-RateLimit-Remaining"), response.headers.get("X-RateLimit-Reset")
        )
        return _decode(response, path)

    def _retry_wait(self, error: QoveryRetriableError, attempt: int) -> float:
        backoff = self.retry.backoff_seconds * 2 ** (attempt - 1)
        wait = backoff * (1 + random.random() / 2)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return min(wait, self.retry.max_wait_seconds)


def validate_base_url(base_url: str) -> str:
    """Return the base URL without a trailing slash, or raise if it is not http(s)."""
    parts = urlsplit(base_url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise QoveryConfigurationError(
            f"The Qovery base URL {base_url!r} is invalid: it must start with https:// "
            "(or http:// for a local simulator).",
            hint="Set SOURCES__QOVERY__BASE_URL or base_url under [sources.qovery] in "
            ".dlt/config.toml, or pass --base-url.",
        )
    return base_url.rstrip("/")


def _decode(response: requests.Response, path: str) -> Any:
    status = response.status_code
    if status == 200:
        try:
            return response.json()
        except ValueError:
            raise QoveryRetriableError(
                f"GET {path} returned a body that is not valid JSON.",
                status=status,
                path=path,
                body_excerpt=_excerpt(response),
                hint="The response was probably cut short. If it persists, retry later.",
            ) from None
    kwargs = {"status": status, "path": path, "body_excerpt": _excerpt(response)}
    if status == 401:
        raise QoveryAuthenticationError(
            f"GET {path} was rejected with 401 Unauthorized.",
            hint="Check the API token: it may be missing, mistyped, revoked or expired. "
            "Create one in the Qovery console (Organization settings > API tokens).",
            **kwargs,
        )
    if status == 403:
        raise QoveryForbiddenError(
            f"GET {path} was rejected with 403 Forbidden.",
            hint="Check that the token belongs to the organization that owns this resource "
            "and that its role may read it.",
            **kwargs,
        )
    if status == 404:
        raise QoveryNotFoundError(
            f"GET {path} returned 404 Not Found.",
            hint="Check the id in the path: it may be mistyped or deleted.",
            **kwargs,
        )
    if status in RETRIABLE_STATUSES:
        error = QoveryRetriableError(
            f"GET {path} returned {status}.",
            hint="The API is rate limiting or failing. If it persists, lower "
            "requests_per_hour or retry later.",
            **kwargs,
        )
        error.retry_after = _retry_after_seconds(response)
        raise error
    if 300 <= status < 400:
        raise QoveryError(
            f"GET {path} was redirected ({status}); the connector does not follow redirects "
            "so that the token is never sent to another address.",
            hint="Point base_url at the API itself, for example https://api.qovery.com.",
            **kwargs,
        )
    raise QoveryError(f"GET {path} returned unexpected status {status}.", **kwargs)


def _retry_after_seconds(response: requests.Response) -> float | None:
    """Read `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset` (epoch seconds)."""
    value = response.headers.get("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    if response.headers.get("X-RateLimit-Remaining") == "0":
        reset = response.headers.get("X-RateLimit-Reset", "")
        if reset.isdigit():
            return max(0.0, int(reset) - time.time())
    return None


def _excerpt(response: requests.Response) -> str:
    text = response.text or ""
    return text[:BODY_EXCERPT_CHARS]
