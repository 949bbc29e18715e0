"""One output-encoding rule for every sink (DESIGN.md, "Grading principles" 8).

Text that may come from a submission (file names, diagnoses, notes, exception text) passes through one of
these before it reaches the instructor's terminal, a Markdown report or an HTML page:

* :func:`terminal`: C0 and C1 control characters are removed, except newline and tab. This defends against
  escape sequences (clear screen, window title, OSC 52 clipboard writes) and carriage returns that rewrite a line.
* :func:`markdown`: the same, on one line, with HTML and Markdown syntax escaped, so that a report viewer
  renders it as the characters it is (no tags, links, images, emphasis or broken tables).
* :func:`html`: the same, HTML-escaped (attribute-safe: quotes too).
"""

from __future__ import annotations

import html as _html
import re

# C0 (U+0000-U+001F) but \t and \n, DEL, C1 (U+0080-U+009F); bidirectional overrides reorder what is shown.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]|~!$])")   # emphasis, code, links, images, tables, math
MARKDOWN_BLOCK = re.compile(r"^(\s*)([#+\->=]|\d+[.)])")   # a heading, list or quote at the start


def terminal(text: object) -> str:
    """``text`` without control characters (newline and tab kept): safe to print."""
    return CONTROL.sub("", str(text))


def one_line(text: object) -> str:
    """:func:`terminal` on a single line (newlines and tabs become spaces)."""
    return " ".join(terminal(text).split())


def markdown(text: object) -> str:
    """``text`` as literal Markdown on one line (a table cell or a list item): no HTML, links or emphasis."""
    escaped = _html.escape(one_line(text), quote=False)  # <, >, & first: then Markdown syntax
    escaped = MARKDOWN_INLINE.sub(r"\\\1", escaped)
    return MARKDOWN_BLOCK.sub(_escape_block, escaped)


def _escape_block(match: re.Match) -> str:
    space, marker = match.groups()
    return space + marker[:-1] + "\\" + marker[-1]  # "# x" -> "\# x", "1. x" -> "1\. x"


def html(text: object) -> str:
    """``text`` escaped for HTML text and quoted attributes."""
    return _html.escape(terminal(text), quote=True)


class TerminalStream:
    """A text stream that writes through :func:`terminal`, keeping one leading carriage return per write (the
    progress bar's own redraw); every other control character is removed."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        lead = "\r" if text.startswith("\r") else ""
        return self.stream.write(lead + terminal(text[len(lead):]))

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)
