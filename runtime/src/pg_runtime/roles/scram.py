"""A password as PostgreSQL stores it (a SCRAM-SHA-256 verifier), computed on the client.

`CREATE ROLE ... PASSWORD '<verifier>'` then never sends the password itself, so it
cannot reach the server's statement log or pg_stat_activity.
"""

import base64
import hashlib
import hmac
import secrets

# PostgreSQL's own default (scram_iterations, PostgreSQL 16+; fixed at 4096 before).
ITERATIONS = 4096


def new_password() -> str:
    """A password of 256 random bits, safe in a URL without escaping."""
    return secrets.token_urlsafe(32)


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802, RFC 7677)."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
