"""HTML for display: an allow-list sanitiser, HTML to plain text, plain text to HTML.

Both work in one linear pass over the input. The sanitiser keeps
formatting markup that mail uses and drops everything that can run code or reach out on
its own: scripts, styles, frames, objects, forms, event handler attributes, and
javascript:/vbscript:/data: URLs (except data: images).
"""

from __future__ import annotations

import html
import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Elements kept (their attributes are filtered).
_ALLOWED = _words(
    "a abbr acronym address area article aside b bdi bdo big blockquote body br caption center "
    "cite code col colgroup dd del details dfn div dl dt em figcaption figure font footer h1 h2 "
    "h3 h4 h5 h6 header hr html i img ins kbd label li main map mark nav ol p pre q rp rt ruby s "
    "samp section small span strike strong sub summary sup table tbody td tfoot th thead time tr "
    "tt u ul var wbr"
)
# Elements dropped together with everything inside them.
_DROP_CONTENT = _words(
    "script style iframe frame frameset object embed applet noscript noembed noframes template "
    "title head svg math textarea select option button xmp plaintext canvas audio video source "
    "track"
)
# Void elements (no end tag). Elements neither kept nor dropped with their content (form,
# input, base, link, meta, unknown tags) lose their tags and keep their text.
_VOID = _words("area br col embed hr img input link meta param source track wbr base")
_URL_ATTRS = _words(
    "href src action formaction background lowsrc dynsrc poster cite longdesc usemap "
    "xlink:href data codebase"
)
_DROP_ATTRS = _words("srcset srcdoc formaction ping style-src xmlns")
_ATTR_NAME = re.compile(r"^[a-z][a-z0-9_:.-]{0,40}$")
_SAFE_SCHEMES = ("http:", "https:", "mailto:", "cid:", "ftp:", "tel:", "attachment:")
_CSS_BAD = re.compile(
    r"expression\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding|@import"
    r"|url\s*\(\s*['\"]?\s*(?:javascript|vbscript|data):",
    re.IGNORECASE,
)
_CTRL_WS = re.compile(r"[\x00-\x20\x7f]+")

MAX_NESTING = 512  # open elements tracked; deeper ones are written without close tags


def _safe_url(value: str, tag: str, attr: str) -> bool:
    compact = _CTRL_WS.sub("", value).lower()
    if ":" not in compact.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]:
        return True  # relative URL, fragment, or no scheme
    if compact.startswith(_SAFE_SCHEMES):
        return True
    return compact.startswith("data:image/") and tag == "img" and attr == "src"


_TAG_OPEN = re.compile(r"<(/?)([A-Za-z][^\t\n\f\r />]{0,63})")
_SKIP_SPACE = re.compile(r"[\t\n\f\r /]*")
_SPACE = re.compile(r"[\t\n\f\r ]*")
_ATTR = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_ATTR_EQ = re.compile(r"=[^\t\n\f\r />=]*")  # a name starting with "=" (HTML5 allows it)


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """End of the match of a pattern that matches the empty string too."""
    m = pattern.match(text, pos)
    return pos if m is None else m.end()


# Elements whose content is raw text up to their end tag (HTML tokenizer "RAWTEXT" etc.)
_RAW_TEXT = _words("script style textarea title xmp iframe noembed noframes noscript")


class _Sanitizer:
    """Reads HTML the way the HTML5 tokenizer splits it, in one linear pass (html.parser
    in Python 3.11 is quadratic on some hostile input), and writes only what it allows."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.lower = source.lower()
        self.out: list[str] = []
        self.open: list[str] = []
        self.skip_tag = ""
        self.skip_depth = 0

    def run(self) -> str:
        src = self.src
        n = len(src)
        pos = 0
        while pos < n:
            lt = src.find("<", pos)
            if lt < 0:
                self.text(src[pos:])
                break
            if lt > pos:
                self.text(src[pos:lt])
            pos = self.markup(lt)
        return "".join(self.out + [f"</{t}>" for t in reversed(self.open)])

    def text(self, data: str) -> None:
        if not self.skip_depth:
            self.out.append(html.escape(html.unescape(data), quote=False))

    def markup(self, lt: int) -> int:
        """Handle the markup at src[lt] == "<"; returns where to continue."""
        src, n = self.src, len(self.src)
        if src.startswith("<!--", lt):
            end = src.find("-->", lt + 4)
            return n if end < 0 else end + 3  # comments are dropped
        if src.startswith(("<!", "<?"), lt):
            end = src.find(">", lt + 2)
            return n if end < 0 else end + 1  # doctype, CDATA, processing instructions
        m = _TAG_OPEN.match(src, lt)
        if m is None:
            if src.startswith("</", lt):  # "</>" or "</ junk>": ignored, as browsers do
                end = src.find(">", lt + 2)
                return n if end < 0 else end + 1
            self.text("<")
            return lt + 1
        closing, tag = m.group(1) == "/", m.group(2).lower()
        attrs, pos = self.attributes(m.end())
        if pos < 0:
            return n  # a tag cut off by the end of the document is dropped
        if closing:
            self.end_tag(tag)
        else:
            self.start_tag(tag, attrs)
            if tag in _RAW_TEXT:
                # its content is text up to "</tag", whatever it looks like
                end = self.lower.find("</" + tag, pos)
                if end < 0:
                    return n
                close = src.find(">", end)
                self.end_tag(tag)
                return n if close < 0 else close + 1
        return pos

    def attributes(self, pos: int) -> tuple[list[tuple[str, str]], int]:
        """Parse attributes up to ">"; returns them and the offset after ">" (-1 at EOF)."""
        src, n = self.src, len(self.src)
        attrs: list[tuple[str, str]] = []
        while True:
            pos = _skip(_SKIP_SPACE, src, pos)
            if pos >= n:
                return attrs, -1
            if src[pos] == ">":
                return attrs, pos + 1
            end = max(_skip(_ATTR, src, pos), _skip(_ATTR_EQ, src, pos))
            name = src[pos:end].lower()
            pos = _skip(_SPACE, src, end)
            value = ""
            if pos < n and src[pos] == "=":
                pos = _skip(_SPACE, src, pos + 1)
                if pos < n and src[pos] in "\"'":
                    close = src.find(src[pos], pos + 1)
                    if close < 0:
                        return attrs, -1
                    value = src[pos + 1 : close]
                    pos = close + 1
                else:
                    end = _skip(_UNQUOTED, src, pos)
                    value, pos = src[pos:end], end
            attrs.append((name, html.unescape(value)))

    def filtered(self, tag: str, attrs: list[tuple[str, str]]) -> str:
        parts: list[str] = []
        seen: set[str] = set()
        for name, value in attrs:
            if name in seen or not _ATTR_NAME.match(name) or name.startswith("on"):
                continue
            if name in _DROP_ATTRS:
                continue
            seen.add(name)
            if name in _URL_ATTRS and not _safe_url(value, tag, name):
                continue
            if name == "style" and _CSS_BAD.search(value):
                continue
            if tag == "a" and name in ("target", "rel"):
                continue  # set below
            parts.append(f' {name}="{html.escape(value, quote=True)}"')
        if tag == "a":
            parts.append(' target="_blank" rel="noopener noreferrer"')
        return "".join(parts)

    def start_tag(self, tag: str, attrs: list[tuple[str, str]]) -> None:
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        if tag in _DROP_CONTENT:
            if tag not in _VOID:
                self.skip_tag = tag
                self.skip_depth = 1
            return
        if tag not in _ALLOWED:
            return
        self.out.append(f"<{tag}{self.filtered(tag, attrs)}>")
        if tag not in _VOID and len(self.open) < MAX_NESTING:
            self.open.append(tag)

    def end_tag(self, tag: str) -> None:
        if self.skip_depth:
            if tag == self.skip_tag:
                self.skip_depth -= 1
            return
        if tag not in _ALLOWED or tag in _VOID or tag not in self.open:
            return
        # close what was left open inside it, so the output stays well nested
        while self.open:
            top = self.open.pop()
            self.out.append(f"</{top}>")
            if top == tag:
                break


def sanitize_html(source: str) -> str:
    """Return HTML that is safe to show: allow-listed elements, filtered attributes."""
    return _Sanitizer(source.replace("\x00", "")).run()


# html_to_text works with regular expressions: it only reads text (nothing it returns is
# markup), and it is several times faster than html.parser on large newsletters.
_SKIP_TEXT = re.compile(
    r"<(script|style|head|title|noscript|template|svg|math|xmp|textarea|select)\b[^<>]*>"
    r".*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)|<![^<>]*>|<\?[^<>]*>", re.DOTALL)
_PARAGRAPH = re.compile(r"</?(?:p|h[1-6]|table|blockquote|pre)\b[^<>]*>", re.IGNORECASE)
_LINE = re.compile(
    r"<br\b[^<>]*>|</?(?:div|tr|ul|ol|dl|dt|dd|address|article|aside|center|details|"
    r"figcaption|figure|footer|form|header|hr|main|nav|section|summary)\b[^<>]*>",
    re.IGNORECASE,
)
_ITEM = re.compile(r"<li\b[^<>]*>", re.IGNORECASE)
_CELL = re.compile(r"<t[dh]\b[^<>]*>", re.IGNORECASE)
_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")


def html_to_text(source: str) -> str:
    """Readable plain text from HTML (block elements become line breaks)."""
    text = _SKIP_TEXT.sub("", _COMMENT.sub("", source.replace("\x00", "")))
    text = re.sub(r"\s+", " ", text)  # source line breaks are not text line breaks
    text = _PARAGRAPH.sub("\n\n", text)
    text = _LINE.sub("\n", text)
    text = _ITEM.sub("\n* ", text)
    text = _CELL.sub(" ", text)
    text = html.unescape(_TAG.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_to_html(text: str) -> str:
    """Plain text as HTML paragraphs (blank lines) and line breaks, as WildDuck renders it."""
    encoded = html.escape(text.replace("\r\n", "\n"), quote=True)
    encoded = re.sub(r"[ \t]+$", "", encoded.strip(), flags=re.MULTILINE).strip()
    encoded = re.sub(r"\n\n+", "</p><p>", encoded).replace("\n", "<br/>")
    return f"<p>{encoded}</p>"


_CID_LINK = re.compile(r"\bcid:([^\s\"'<>)]+)")


def replace_cid_links(source: str, cid_to_id: dict[str, str]) -> str:
    """Rewrite "cid:x" links as "attachment:ATT00001" (the API's replaceCidLinks)."""
    if "cid:" not in source:
        return source
    return _CID_LINK.sub(
        lambda m: f"attachment:{cid_to_id[m.group(1)]}" if m.group(1) in cid_to_id else m.group(0),
        source,
    )
