"""Positions in the primary's write-ahead log (LSNs), as PostgreSQL writes them: `16/B374D848`.

A write's response hands its position out as a consistency token (pg_runtime/consistency.py); a
standby that has replayed past it holds that write.
"""

import re

# Two 32-bit halves in hexadecimal: at most 17 characters, which bounds what a client sends.
_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
MAX_LENGTH = 17


class InvalidPositionError(ValueError):
    """Not a WAL position as PostgreSQL writes one."""


def parse_position(text: str) -> int:
    if len(text) > MAX_LENGTH or not _LSN.fullmatch(text):
        raise InvalidPositionError("a WAL position looks like 16/B374D848")
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def format_position(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"
