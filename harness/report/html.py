"""The look every HTML page shares (run, A/B): inline CSS, tables, banners, embedded plots.

Pages are one self-contained file, readable offline: no scripts, no CDN, plots embedded as
base64 PNG drawn with matplotlib's object API (no pyplot state, no display).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

CSS = """
body{font-family:sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}
th{background:#f3f3f3}.regression,.missing,.fail,.error{color:#c0392b;font-weight:bold}
.improvement,.pass{color:#27ae60;font-weight:bold}.inconclusive,.xfail{color:#b9770e;
font-weight:bold}.skip{color:#777}
.banner{padding:.7em 1em;font-weight:bold;border-radius:4px;margin-bottom:1em}
.ok{background:#e8f6ec}.bad{background:#fbeaea}.invalid{background:#c0392b;color:#fff}
.incomplete{background:#fdf3d9}img.plot{max-width:100%;border:1px solid #eee}
.side{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
p.note{color:#555;font-size:13px}
"""

# Cell texts that get a class of their own (colour): verdicts and step statuses.
MARKED = (
    "regression",
    "improvement",
    "inconclusive",
    "missing",
    "pass",
    "fail",
    "error",
    "xfail",
    "skip",
)


def page(title: str, body: Sequence[str]) -> str:
    """A whole HTML document: `title` (plain text) and `body` (HTML fragments)."""
    t = html.escape(title)
    head = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{t}</title>"
    return "\n".join(
        [head, f"<style>{CSS}</style></head><body><h1>{t}</h1>", *body, "</body></html>"]
    )


def table(head: Sequence[str], rows: Sequence[Sequence[str]], *, css_id: str = "") -> str:
    """An HTML table of plain-text cells; markdown bold (**x**) is dropped and a verdict or
    status cell gets its colour class."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            text = str(cell).strip("*")
            cls = f' class="{text}"' if text in MARKED else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{css_id}"' if css_id else ""
    return f"<table{ident}><tr>{th}</tr>{''.join(body)}</table>"


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def img(data: bytes, alt: str, *, css_id: str = "") -> str:
    """An <img> carrying PNG `data` inline (base64), so the page stays one file."""
    b64 = base64.b64encode(data).decode("ascii")
    ident = f' id="{css_id}"' if css_id else ""
    return f'<img class="plot"{ident} alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def banner(text: str, cls: str, *, css_id: str = "verdict") -> str:
    """The coloured line on top of a page (cls: ok, bad, incomplete, invalid)."""
    ident = f' id="{css_id}"' if css_id else ""
    return f'<div class="banner {cls}"{ident}>{html.escape(text)}</div>'
