"""Redaction of credentials in anything the command line prints: headers, URLs, error text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SENSITIVE_HEADERS", "redact_headers", "redact_text", "redact_url"]

REDACTED = "[redacted]"

#: Header names whose values are never printed (compared lower-case).
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)

# Query parameters that carry credentials in practice (Azure's api-key, Google's key, SAS
# signatures, OAuth tokens): any name containing one of these words.
_SENSITIVE_QUERY = re.compile(r"key|token|secret|sig|pass|auth|credential|session", re.I)
# "Bearer <token>" and "sk-..." style keys that may turn up in error messages.
_TOKEN_PATTERNS = re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+|\bsk-[A-Za-z0-9_\-]{8,}")


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers with the value of every credential header replaced by ``[redacted]``."""
    return [
        (name, REDACTED if name.lower() in SENSITIVE_HEADERS else value) for name, value in headers
    ]


def redact_url(url: str) -> str:
    """The URL without its password and with credential-like query values redacted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[unparseable URL]"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{REDACTED}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, REDACTED if _SENSITIVE_QUERY.search(k) else v) for k, v in pairs],
            quote_via=quote,
            safe="[]",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` and anything shaped like a token replaced.

    For error messages and response excerpts, which may echo what the request carried.
    """
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return _TOKEN_PATTERNS.sub(_redact_token, text)


def _redact_token(match: re.Match[str]) -> str:
    scheme = match.group(1)
    return f"{scheme} {REDACTED}" if scheme else REDACTED
