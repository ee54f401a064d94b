"""Idempotency keys of publish requests: their format, and the hash that says two bodies are the same.

A single publish sends its key in the `Idempotency-Key` header, a batch item in its `idempotency_key` field; both
are the same key of the same publisher (one table), so a retry may come either way.
"""

import hashlib
import json
import re

IDEMPOTENCY_KEY_FORMAT = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,254}\Z")  # printable ASCII, 1-255 characters
IDEMPOTENCY_KEY_MESSAGE = "Use 1 to 255 printable ASCII characters."
IDEMPOTENCY_KEY_SCHEMA = {  # OpenAPI's regular expressions end with $, not Python's \Z
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": IDEMPOTENCY_KEY_FORMAT.pattern.replace(r"\Z", "$"),
}


def canonical_hash(data) -> str:
    """The same JSON body hashes the same whatever its key order and whitespace."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
