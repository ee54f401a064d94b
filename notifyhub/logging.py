"""Keep credentials out of every log line.

Browsers cannot set headers on a WebSocket handshake, so they send the JWT as
`?access_token=...`; uvicorn's access log, Django's request log and proxies
would write it down. This filter, installed on every handler in settings,
rewrites a record's message before it is formatted.
"""

import logging
import re

REDACTED = "[redacted]"
# access_token=... in query strings (also URL-encoded inside a logged URL), and Bearer credentials.
_SECRETS = re.compile(
    r"(?P<key>(?:access_token|refresh_token|token)(?:=|%3D))[^&\s\"'#]+"
    r"|(?P<scheme>Bearer\s+)[A-Za-z0-9._~+/=-]+",
    re.IGNORECASE,
)


def scrub_tokens(text: str) -> str:
    """`text` with token values replaced by a marker."""
    return _SECRETS.sub(lambda match: (match.group("key") or match.group("scheme")) + REDACTED, text)


class ScrubTokensFilter(logging.Filter):
    """A handler filter that redacts tokens from the formatted message (never drops the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub_tokens(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True
