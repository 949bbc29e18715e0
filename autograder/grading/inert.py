"""Student notebooks rendered inertly by nbgrader's HTML pages (the formgrader, ``nbgrader generate_feedback``).

Those pages are served from the Jupyter server's origin, where a script could drive the instructor's session.
nbgrader_config.py turns nbconvert's ``HTMLExporter.sanitize_html`` on (HTML and Markdown outputs are cleaned of
scripts and event handlers) and adds :class:`InertOutputs`, which defends against what that leaves:

* markdown cells: the formgrader's template renders them without sanitising, so each is rendered here and
  cleaned (an allow-list of tags and attributes, http/https/mailto links), then handed to the template as one
  HTML block that its Markdown renderer passes through unchanged;
* outputs that run code by type (JavaScript, widgets), image data and metadata that the template writes into
  attributes unquoted (``width=1 onerror=...``), file names and isolated frames chosen by the student.

It runs in the server on an in-memory copy; the notebook's file is unchanged.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor

SAFE_DATA = {"text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg", "image/gif",
             "image/svg+xml"}
BASE64_IMAGES = {"image/png", "image/jpeg", "image/gif"}
BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
SAFE_STREAMS = {"stdout", "stderr"}


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value if isinstance(value, str) else ""


def _number(value) -> int | None:
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if 0 < number < 100_000 else None


def _metadata(meta) -> dict:
    """Only a numeric width and height and a text alt per image type (quoted and escaped by the template)."""
    out = {}
    for key, value in (meta or {}).items() if isinstance(meta, dict) else ():
        if key in BASE64_IMAGES and isinstance(value, dict):
            kept = {k: _number(value.get(k)) for k in ("width", "height")}
            kept = {k: v for k, v in kept.items() if v is not None}
            if isinstance(value.get("alt"), str):
                kept["alt"] = value["alt"]
            out[key] = kept
    return out


def _data(data) -> dict:
    out = {}
    for mime, value in (data or {}).items() if isinstance(data, dict) else ():
        text = _text(value)
        if mime in SAFE_DATA and (mime not in BASE64_IMAGES or BASE64.match(text)):
            out[mime] = text
    return out


def inert_output(output: dict) -> dict | None:
    """The output as it may be rendered, or None to leave it out."""
    kind = output.get("output_type")
    if kind in ("display_data", "execute_result"):
        data = _data(output.get("data"))
        if not data:
            return None
        kept = {"output_type": kind, "data": data, "metadata": _metadata(output.get("metadata"))}
        if kind == "execute_result":
            kept["execution_count"] = output.get("execution_count")
        return kept
    if kind == "stream":
        name = output.get("name") if output.get("name") in SAFE_STREAMS else "stdout"
        return {"output_type": "stream", "name": name, "text": _text(output.get("text"))}
    if kind == "error":
        trace = output.get("traceback")
        return {"output_type": "error", "ename": _text(output.get("ename")), "evalue": _text(output.get("evalue")),
                "traceback": [_text(t) for t in trace] if isinstance(trace, list) else []}
    return None


MARKDOWN_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2",
                 "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "span", "strong",
                 "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"]
MARKDOWN_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "title"], "th": ["align"], "td": ["align"],
                       "*": ["class"]}
PRE = re.compile(r"(<pre[\s>][\s\S]*?</pre>)")


def inert_markdown(source: str) -> str:
    """``source`` rendered to clean HTML on one line per block (no blank line ends the HTML block early)."""
    import bleach
    from nbconvert.filters import markdown2html_mistune

    clean = bleach.clean(markdown2html_mistune(source), tags=MARKDOWN_TAGS, attributes=MARKDOWN_ATTRIBUTES,
                         protocols=["http", "https", "mailto"], strip=False)
    parts = PRE.split(clean)  # inside <pre> a newline is kept as a character reference, elsewhere a space
    flat = "".join(p.replace("\n", "&#10;") if p.startswith("<pre") else " ".join(p.split()) for p in parts)
    return f"<div class=\"inert-markdown\">{flat}</div>"


class InertOutputs(Preprocessor):
    """Render markdown cells as cleaned HTML and keep only inert outputs (see the module's docstring)."""

    def preprocess_cell(self, cell, resources, index):
        from nbformat import from_dict

        if cell.get("cell_type") == "markdown":
            cell["source"] = inert_markdown(_text(cell.get("source")))
            cell.pop("attachments", None)
        if cell.get("cell_type") == "code":
            kept = [inert_output(o) for o in cell.get("outputs", []) if isinstance(o, dict)]
            cell["outputs"] = [from_dict(o) for o in kept if o is not None]
        return cell, resources
