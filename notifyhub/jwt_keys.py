"""The web process checks its JWT signing key once, not on every token (`install()`, from notifyhub/asgi.py).

PyJWT makes sure an HMAC secret is not an asymmetric key, a certificate or a
JWK before every signature it verifies or makes (`HMACAlgorithm.prepare_key`:
PEM and SSH prefixes, two DER parses, a JSON parse), although the key is the
same setting every time; every hub connect and API request verifies a token.
`install()` registers HS256, HS384 and HS512 again (PyJWT's own registry,
`jwt.register_algorithm`) as `KeyCheckedOnceHMAC`: PyJWT's checks run once
for each distinct key, and a key that passed them is not checked again.
"""

import threading

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.utils import force_bytes

HMAC_ALGORITHMS = {"HS256": HMACAlgorithm.SHA256, "HS384": HMACAlgorithm.SHA384, "HS512": HMACAlgorithm.SHA512}
# Keys remembered per algorithm: the signing key, and a few more (settings overridden in tests).
KEYS_KEPT = 8


class KeyCheckedOnceHMAC(HMACAlgorithm):
    """PyJWT's HMAC algorithm, remembering the keys that passed its checks."""

    def __init__(self, hash_alg) -> None:
        super().__init__(hash_alg)
        self._checked: set[bytes] = set()
        self._lock = threading.Lock()

    def prepare_key(self, key: str | bytes) -> bytes:
        key_bytes = force_bytes(key)
        if key_bytes in self._checked:
            return key_bytes
        prepared = super().prepare_key(key_bytes)  # raises for a key that must not be an HMAC secret
        with self._lock:
            if len(self._checked) >= KEYS_KEPT:
                self._checked.clear()
            self._checked.add(prepared)
        return prepared


def install() -> None:
    """Verify and sign HS256/384/512 tokens with `KeyCheckedOnceHMAC` in this process (idempotent)."""
    for name, hash_alg in HMAC_ALGORITHMS.items():
        if isinstance(jwt.get_algorithm_by_name(name), KeyCheckedOnceHMAC):
            continue
        jwt.unregister_algorithm(name)
        jwt.register_algorithm(name, KeyCheckedOnceHMAC(hash_alg))
