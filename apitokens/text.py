"""The text of an API token: what a client holds, never what the database keeps.

`rft_` + 43 base62 characters (exactly 256 random bits) + a 6-character base62
CRC32 of everything before it, as GitHub's `ghp_` tokens have: secret scanners
recognise the prefix, and a mistyped or truncated token is refused by its
checksum without a database query. The database keeps only the SHA-256 of the
text (`digest`): such a token has too much entropy to be guessed from its hash,
so a salted slow hash would only cost every request.

Tokens made by DRF's authtoken before this app (40 hexadecimal characters, no
checksum) were hashed in place by migration 0002 and are accepted until they
expire (migration 0004).
"""

import hashlib
import re
import secrets
import string
import zlib

PREFIX = "rft_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # base62
RANDOM_BYTES = 32  # 256 bits
BODY_LENGTH = 43  # 62**43 > 2**256: every 32-byte value fits
CHECKSUM_LENGTH = 6  # 62**6 > 2**32: every CRC32 fits
LENGTH = len(PREFIX) + BODY_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = len(PREFIX) + 4  # what lists show of a token, to tell one from another

_SHAPE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}")
_LEGACY_SHAPE = re.compile(r"[0-9a-f]{40}")


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(head: str) -> str:
    return _base62(zlib.crc32(head.encode("ascii")), CHECKSUM_LENGTH)


def generate() -> str:
    """A new token's text: the prefix, 256 random bits and the checksum."""
    body = _base62(int.from_bytes(secrets.token_bytes(RANDOM_BYTES)), BODY_LENGTH)
    head = PREFIX + body
    return head + _checksum(head)


def is_well_formed(text: str) -> bool:
    """Whether `text` could be a token: ours with a valid checksum, or a migrated DRF key."""
    if _SHAPE.fullmatch(text):
        head, checksum = text[:-CHECKSUM_LENGTH], text[-CHECKSUM_LENGTH:]
        return secrets.compare_digest(_checksum(head), checksum)
    return _LEGACY_SHAPE.fullmatch(text) is not None


def digest(text: str) -> str:
    """What the database keeps of a token: the SHA-256 of its text, in hexadecimal."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def display_prefix(text: str) -> str:
    """The first characters of a token, shown in lists to recognise it (too few to use)."""
    return text[:DISPLAY_LENGTH]
