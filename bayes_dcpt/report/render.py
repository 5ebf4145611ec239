"""How a report looks: its blocks rendered as one self-contained HTML file or as Markdown with PNGs beside it.

HTML reports embed every figure as a base64 PNG data URI and carry their CSS inline: no external resource
is loaded, so the file can be mailed or archived as is. Markdown reports write the PNGs to
``<stem>_files/`` beside the ``.md`` file. Cells flagged bad are marked with a warning sign in both.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from bayes_dcpt.errors import InputError
from bayes_dcpt.report.blocks import Block, Heading, Image, Para, Pre, Table, fmt

__all__ = ["CSS", "FORMATS", "check_format", "render_html", "render_md", "write"]

FORMATS = ("html", "md")

CSS = """
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#111;background:#fff;max-width:1180px;
margin:1.5em auto;padding:0 1em;line-height:1.45}
h1{font-size:1.6em;border-bottom:2px solid #111;padding-bottom:.2em}
h2{font-size:1.3em;border-bottom:1px solid #999;margin-top:2em}
h3{font-size:1.1em}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.85em}
caption{text-align:left;font-style:italic;padding-bottom:.3em}
th,td{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}
th{background:#eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b00000;font-weight:bold}
td.bad{background:#fde8e8}
p.bad{border-left:4px solid #b00000;padding-left:.6em}
p.good{border-left:4px solid #555;padding-left:.6em}
figure{margin:1em 0 1.6em}
figure img{max-width:100%;height:auto;border:1px solid #ccc}
figcaption{font-size:.85em;color:#333}
pre{background:#f4f4f4;border:1px solid #ccc;padding:.6em;overflow-x:auto;font-size:.8em}
nav ul{columns:2;font-size:.9em}
.keybox{border:2px solid #111;padding:.4em 1em;margin:1em 0}
@media print{body{max-width:none}figure{break-inside:avoid}}
"""


def check_format(fmt_: str | None, out: Path) -> str:
    """The report format: ``fmt_`` checked (``markdown`` means ``md``), or from the suffix of ``out``."""
    if fmt_ is None:
        return "md" if out.suffix.lower() in (".md", ".markdown") else "html"
    f = str(fmt_).strip().lower()
    if f == "markdown":
        f = "md"
    if f not in FORMATS:
        raise InputError(f"format must be html or md, not {fmt_!r}")
    return f


def write(title: str, blocks: list[Block], out: Path, fmt_: str) -> list[Path | str]:
    """Render ``blocks`` to ``out`` (atomically; its folder is created); returns the figures written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    images: list[Path | str] = []
    if fmt_ == "html":
        text = render_html(title, blocks)
        images = [b.name for b in blocks if isinstance(b, Image)]
    else:
        text, written = render_md(title, blocks, out)
        images = list(written)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return images


# ================================================================================================ HTML
def _is_num(s: str) -> bool:
    try:
        float(str(s).replace(",", ""))
        return True
    except ValueError:
        return False


def _flagged(t: Table, i: int, column: object) -> bool:
    bad = t.bad
    return bool(bad is not None and column in bad.columns and bool(bad.iat[i, bad.columns.get_loc(column)]))


def _html_table(t: Table) -> str:
    df = t.frame
    out = ["<table>"]
    if t.caption:
        out.append(f"<caption>{html.escape(t.caption)}</caption>")
    out.append(
        "<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns) + "</tr></thead>"
    )
    out.append("<tbody>")
    for i in range(len(df)):
        cells = []
        for j, c in enumerate(df.columns):
            txt = fmt(df.iat[i, j])
            cls = ["num"] if _is_num(txt) else []
            if _flagged(t, i, c):
                cls.append("bad")
                txt = "\u26a0 " + txt
            attr = f' class="{" ".join(cls)}"' if cls else ""
            cells.append(f"<td{attr}>{html.escape(txt)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _html_block(b: Block) -> str | None:
    if isinstance(b, Heading):
        anchor = f' id="{html.escape(b.anchor)}"' if b.anchor else ""
        return f"<h{b.level}{anchor}>{html.escape(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = ' class="bad"' if b.bad else (' class="good"' if b.good else "")
        return f"<p{cls}>{html.escape(b.text)}</p>"
    if isinstance(b, Table):
        return _html_table(b)
    if isinstance(b, Image):
        uri = "data:image/png;base64," + base64.b64encode(b.png).decode("ascii")
        return (
            f'<figure><img src="{uri}" alt="{html.escape(b.alt)}">'
            f"<figcaption>{html.escape(b.caption)}</figcaption></figure>"
        )
    if isinstance(b, Pre):
        return f"<pre>{html.escape(b.text)}</pre>"
    return None


def render_html(title: str, blocks: list[Block]) -> str:
    """One self-contained HTML page: inline CSS, a table of contents of the sections, figures as data URIs."""
    toc = [
        f'<li><a href="#{b.anchor}">{html.escape(b.text)}</a></li>'
        for b in blocks
        if isinstance(b, Heading) and b.level == 2 and b.anchor
    ]
    body = [s for s in (_html_block(b) for b in blocks) if s is not None]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n<nav><ul>{''.join(toc)}</ul></nav>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# ============================================================================================ Markdown
def _md_escape(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_table(t: Table) -> str:
    df = t.frame
    lines = []
    if t.caption:
        lines.append(f"*{_md_escape(t.caption)}*")
        lines.append("")
    lines.append("| " + " | ".join(_md_escape(c) for c in df.columns) + " |")
    lines.append("|" + "|".join("---" for _ in df.columns) + "|")
    for i in range(len(df)):
        cells = []
        for j, c in enumerate(df.columns):
            txt = _md_escape(fmt(df.iat[i, j]))
            if _flagged(t, i, c):
                txt = f"**\u26a0 {txt}**"
            cells.append(txt)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _md_image(b: Image, img_dir: Path, written: list[Path]) -> list[str]:
    img_dir.mkdir(parents=True, exist_ok=True)
    p = img_dir / f"{len(written) + 1:02d}_{_safe(b.name)}.png"
    p.write_bytes(b.png)
    written.append(p)
    return [f"![{_md_escape(b.alt)}]({img_dir.name}/{p.name})", "", f"*{_md_escape(b.caption)}*", ""]


def render_md(title: str, blocks: list[Block], out: Path) -> tuple[str, list[Path]]:
    """Markdown text of the report, writing its figures to ``<stem>_files/`` beside ``out``."""
    img_dir = out.parent / f"{out.stem}_files"
    written: list[Path] = []
    parts = [f"# {title}", ""]
    for b in blocks:
        if isinstance(b, Heading):
            parts += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            parts += [f"**\u26a0 {b.text}**" if b.bad else b.text, ""]
        elif isinstance(b, Table):
            parts += [_md_table(b), ""]
        elif isinstance(b, Image):
            parts += _md_image(b, img_dir, written)
        elif isinstance(b, Pre):
            parts += ["```", b.text, "```", ""]
    return "\n".join(parts) + "\n", written
