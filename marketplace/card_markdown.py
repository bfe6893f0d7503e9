"""The model card's Markdown as safe HTML, for the model page, with no Markdown library (none is a dependency).

Covers what `training.model_card` writes (CommonMark subset): YAML front matter (dropped: the page shows those
facts itself), ATX headings, pipe tables, bullet and numbered lists, fenced code, paragraphs; inline code,
**bold**, *emphasis* and links to http(s) or site-relative URLs. Every piece of text is HTML-escaped first, so a
card (whose title and description come from the task creator) cannot inject markup."""

from __future__ import annotations

import re
from html import escape

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*+]\s+(.*)$")
_NUMBER = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    """Escape `text`, then turn `code`, **bold**, *em* and safe links into tags."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{escape(part[1:-1])}</code>")
            continue
        html = escape(part, quote=False)
        html = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html)
        html = re.sub(r"(?<![*\w])\*(?!\s)(.+?)(?<!\s)\*(?![*\w])", r"<em>\1</em>", html)
        html = _LINK.sub(_link, html)
        out.append(html)
    return "".join(out)


def _link(m: re.Match) -> str:
    label, url = m.group(1), m.group(2)
    if not (url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//"))):
        return m.group(0)
    return f'<a href="{url.replace(chr(34), "&quot;")}" rel="nofollow noopener">{label}</a>'


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def _table(lines: list[str]) -> str:
    head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(lines[0]))
    body = "".join(
        "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(row)) + "</tr>" for row in lines[2:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _strip_front_matter(lines: list[str]) -> list[str]:
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "..."):
                return lines[i + 1 :]
    return lines


def _block(lines: list[str], i: int) -> tuple[str, int]:
    """The HTML of the block starting at line `i`, and the index of the line after it."""
    line = lines[i]
    if line.startswith("```"):
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        return f"<pre><code>{escape(chr(10).join(lines[i + 1 : end]))}</code></pre>", end + 1
    if m := _HEADING.match(line):
        level = len(m.group(1))
        return f"<h{level}>{_inline(m.group(2).rstrip('#').strip())}</h{level}>", i + 1
    if "|" in line and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
        end = i + 2
        while end < len(lines) and lines[end].strip().startswith("|"):
            end += 1
        return _table(lines[i:end]), end
    for pattern, tag in ((_BULLET, "ul"), (_NUMBER, "ol")):
        if pattern.match(line):
            items, j = [], i
            while j < len(lines) and (m := pattern.match(lines[j])):
                items.append(f"<li>{_inline(m.group(1))}</li>")
                j += 1
            return f"<{tag}>{''.join(items)}</{tag}>", j
    j = i
    para = []
    while j < len(lines) and lines[j].strip() and not _starts_block(lines, j):
        para.append(lines[j].strip())
        j += 1
    if not para:  # a line that looks like a block start but is not one: show it as text
        return f"<p>{_inline(line.strip())}</p>", i + 1
    return f"<p>{_inline(' '.join(para))}</p>", j


def _starts_block(lines: list[str], j: int) -> bool:
    line = lines[j]
    return bool(
        line.startswith("```")
        or _HEADING.match(line)
        or _BULLET.match(line)
        or _NUMBER.match(line)
        or ("|" in line and j + 1 < len(lines) and _TABLE_RULE.match(lines[j + 1]))
    )


def card_html(markdown: str) -> str:
    """Safe HTML of a model card (Markdown text, front matter dropped). Every text is escaped."""
    lines = _strip_front_matter(markdown.replace("\r\n", "\n").split("\n"))
    out, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        html, i = _block(lines, i)
        out.append(html)
    return "\n".join(out)
