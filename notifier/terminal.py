"""Text bound for a terminal, with the characters a terminal would obey shown instead.

Alert titles, bodies and labels come from whoever sends the alert. Printed raw, an ESC
sequence in one can recolour or clear the screen, move the cursor over earlier output,
set the window title or, in some terminals, write files or answer back as typed input.
:func:`visible` replaces every such character with an escape that reads as text
(``\\x1b``, ``\\x9b``, ``\\u202e``): C0 controls, DEL, C1 controls, and the Unicode line
separators and bidirectional overrides that make text display other than it reads.
"""

from __future__ import annotations

import re

# C0 but tab and newline, DEL and C1, line/paragraph separators, bidi embeddings,
# overrides and isolates.
_UNSAFE = "\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_IN_TEXT = re.compile(f"[{_UNSAFE}]")
_IN_CELL = re.compile(f"[\t\n{_UNSAFE}]")
# What JSON leaves raw inside strings (it escapes only C0 itself).
_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on shown as an escape; tabs
    and newlines stay, so multi-line text keeps its lines."""
    return _IN_TEXT.sub(_escape, text)


def visible_line(text: str) -> str:
    """:func:`visible` for one line (a table cell): tabs and newlines escaped too."""
    return _IN_CELL.sub(_escape, text)


def visible_json(text: str) -> str:
    """JSON text with the characters JSON leaves raw written as ``\\uXXXX`` escapes: the
    same document, safe on a terminal (these characters occur only inside strings)."""
    return _IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
