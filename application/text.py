"""Text a person typed or a folder holds, shown where it could do harm (a
terminal): ``printable``."""

from __future__ import annotations

import unicodedata

from indexer.people.corrections import TEXT_DIRECTION_CONTROLS


def printable(text: str) -> str:
    """``text`` with every control character (terminal escapes, NUL,
    newlines), line separator and text-direction control written as an
    escape (``\\u001b``, ``\\u202e``): a name or file name prints as what it
    holds, and cannot move the cursor, retitle the terminal or reorder the
    line. A ``\\uXXXX`` escape inside a JSON string is still the same JSON."""
    return "".join(_escaped(c) if unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in TEXT_DIRECTION_CONTROLS
                   else c for c in text)


def _escaped(char: str) -> str:
    return f"\\u{ord(char):04x}"
