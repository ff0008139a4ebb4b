"""Text for the terminal: names from files are escaped before they are printed.

A file name may hold a newline, a carriage return or terminal escape sequences; printed
as it is, it could forge lines of output (a fake ``done`` line, a hidden error) or
drive the terminal. Every line the command line prints about inputs goes through
:func:`printable`.
"""

from __future__ import annotations

import unicodedata


def printable(text: object) -> str:
    """``text`` with control and format characters (newline, carriage return, ESC,
    bidirectional overrides, ...) replaced by visible escapes such as ``\\n`` or
    ``\\x1b``; everything else, non-ASCII letters included, is kept."""
    out = []
    for char in str(text):
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            escaped = char.encode("unicode_escape", errors="backslashreplace").decode("ascii")
            out.append(escaped if escaped != char else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)
