"""What axe-core and a screen reader need from the course's own markup.

- Folded solutions: myst-nb's hide-input template gives every `<summary>` the label "Toggle hidden content",
  which hides its visible text ("Show solution" / "Hide solution"; axe: label-content-name-mismatch). The label
  is dropped, so the control is announced by the words it shows.
- Figures: a notebook's image output has no alt text, so Sphinx falls back to the hashed file name. Unless the
  cell sets one (myst-nb's `mystnb.image.alt`), the alt text is taken from the titles the plotting code sets
  (`set_title`, `suptitle`, `title`), or else names the section the figure belongs to.
"""

from __future__ import annotations

import ast
import re

from docutils import nodes

TOGGLE_LABEL = ' aria-label="Toggle hidden content"'
TITLE_CALL = re.compile(r"\b(?:set_title|suptitle|title)\(\s*([rfbu]*(?:\"[^\"\n]*\"|'[^'\n]*'))")


def plot_titles(code: str) -> list[str]:
    """String literals passed to set_title / suptitle / title in a cell's code (f-string fields kept as typed)."""
    titles = []
    for literal in TITLE_CALL.findall(code):
        prefix = literal[:len(literal) - len(literal.lstrip("rfbuRFBU"))]
        body = literal[len(prefix):]
        try:
            if "f" in prefix.lower():      # an f-string: its fields are shown as "…"
                text = re.sub(r"\{[^}]*\}", "…", body[1:-1])
            else:
                text = ast.literal_eval(prefix.replace("b", "") + body)
        except (SyntaxError, ValueError):
            continue
        text = re.sub(r"\$([^$]*)\$", r"\1", str(text)).replace("\\", "").strip()
        if text and text not in titles:
            titles.append(text)
    return titles


def _cell_of(node):
    while node is not None and not (isinstance(node, nodes.container) and "cell" in node.get("classes", [])):
        node = node.parent
    return node


def _section_title(node) -> str:
    while node is not None and not isinstance(node, nodes.section):
        node = node.parent
    return node[0].astext() if node is not None and len(node) and isinstance(node[0], nodes.title) else ""


def figure_alt(image) -> str:
    cell = _cell_of(image)
    code = ""
    if cell is not None:
        code = "\n".join(b.astext() for b in cell.findall(nodes.literal_block)
                         if "cell_input" in b.parent.get("classes", []) or b.get("language") == "ipython3")
    titles = plot_titles(code)
    if titles:
        return "Figure: " + "; ".join(titles)
    section = _section_title(image)
    return f"Figure in the section “{section}”" if section else "Figure"


def _alt_text(app, doctree, docname) -> None:
    for image in doctree.findall(nodes.image):
        alt = image.get("alt", "")
        if not alt or alt == image.get("uri") or alt.endswith((".png", ".svg", ".jpg")):
            image["alt"] = figure_alt(image)


def _toggle_names(app, pagename, templatename, context, doctree) -> None:
    if "body" in context:
        context["body"] = context["body"].replace(TOGGLE_LABEL, "")


def setup(app):
    app.connect("doctree-resolved", _alt_text)
    app.connect("html-page-context", _toggle_names)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
