"""Hostile strings for names and scopes: markup, script, links, DOT escapes, control
characters, lone surrogates and a 20 KB name. Shared by the rendering and browser tests."""

from __future__ import annotations

HOSTILE = [
    "<script>alert(1)</script>",
    "</script><script>alert(2)</script>",
    '<<TABLE HREF="javascript:alert(3)"><TR><TD>x</TD></TR></TABLE>>',
    '<IMG SRC="/etc/passwd"/>',
    "<<FONT COLOR=\"red\">fake</FONT>>",
    "<b>bold</b>",
    "javascript:alert(4)",
    '" onmouseover="alert(5)',
    "' onclick='alert(6)",
    "back\\",
    "\\N\\G\\L\\n\\l",
    "nul\x00esc\x1b[31mvt\x0bdel\x7f",
    "lone\ud800surrogate\udfff",
    "bidi\u202eevil\u2028line",
    "<!-- comment",
    "]]><![CDATA[",
    "{{x}} ${x} %s",
    "w" * 20_000,
]


def is_markup_free(svg: str) -> list[str]:
    """Problems found in rendered SVG/HTML text: a script element or a javascript: link."""
    low = svg.lower()
    problems = []
    if "<script" in low:
        problems.append("a <script> element")
    for attr in ("href=\"javascript:", "href='javascript:", "xlink:href=\"javascript:"):
        if attr in low:
            problems.append(f"a {attr!r} link")
    if "<img" in low or "<image" in low:
        problems.append("an image element")
    return problems
