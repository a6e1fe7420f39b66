"""Reading the kit's HTML reports as a person and a browser would: their tables, charts, labels and links
(stdlib `html.parser`), and a headless Chromium screenshot of the page (the Debian package `chromium`,
which `make test` installs through scripts/ensure-chromium), decoded with zlib alone."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


@dataclass
class Text:
    """A `<text>` of a chart: its words and its attributes."""

    words: str
    attrs: dict[str, str]


@dataclass
class Chart:
    label: str  # the svg's aria-label
    texts: list[Text] = field(default_factory=list)
    shapes: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (tag, attributes)

    def with_class(self, name: str) -> list[str]:
        return [t.words for t in self.texts if name in t.attrs.get("class", "").split()]

    def attributes(self, name: str, attribute: str) -> list[str]:
        return [t.attrs[attribute] for t in self.texts if name in t.attrs.get("class", "").split()]


@dataclass
class Table:
    attrs: dict[str, str]
    rows: list[list[str]] = field(default_factory=list)
    row_classes: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # every href inside the table

    def as_dicts(self) -> list[dict[str, str]]:
        header, *body = self.rows
        return [dict(zip(header, row, strict=False)) for row in body]


class Page(HTMLParser):
    """Tables, charts, headings, links and anything that would be fetched."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self.charts: list[Chart] = []
        self.headings: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, link text)
        self.fetched: list[str] = []  # src= of any element, href= of <link>
        self.scripts = 0
        self.styles: list[str] = []
        self._table: list[Table] = []
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self._text: Text | None = None
        self._title_depth = 0
        self._style = False
        self._link: list[str] | None = None
        self._href = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if "src" in attrs or (tag == "link" and "href" in attrs):
            self.fetched.append(attrs.get("src") or attrs["href"])
        if tag == "script":
            self.scripts += 1
        elif tag == "style":
            self._style = True
        elif tag == "table":
            self._table.append(Table(attrs))
            self.tables.append(self._table[-1])
        elif tag == "tr" and self._table:
            self._table[-1].rows.append([])
            self._table[-1].row_classes.append(attrs.get("class", ""))
        elif tag in ("td", "th") and self._table:
            self._cell = []
        elif tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "a":
            self._link, self._href = [], attrs.get("href", "")
            if self._table:
                self._table[-1].links.append(self._href)
        elif tag == "svg":
            self.charts.append(Chart(attrs.get("aria-label", "")))
        elif tag == "text" and self.charts:
            self._text = Text("", attrs)
        elif tag == "title" and self._text is not None:
            self._title_depth += 1
        elif tag in ("circle", "rect", "line", "polyline") and self.charts:
            self.charts[-1].shapes.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._style = False
        elif tag == "table" and self._table:
            self._table.pop()
        elif tag in ("td", "th") and self._cell is not None and self._table:
            self._table[-1].rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).split()))
            self._heading = None
        elif tag == "a" and self._link is not None:
            self.links.append((self._href, "".join(self._link).strip()))
            self._link = None
        elif tag == "title" and self._title_depth:
            self._title_depth -= 1
        elif tag == "text" and self._text is not None and self.charts:
            self._text.words = " ".join(self._text.words.split())
            self.charts[-1].texts.append(self._text)
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._style:
            self.styles.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._link is not None:
            self._link.append(data)
        if self._text is not None and not self._title_depth:
            self._text.words += data

    def table_after(self, heading: str, css_class: str | None = None) -> Table:
        """The first table (of `css_class`) whose rows follow the heading; found by the table's class."""
        assert heading in self.headings, (heading, self.headings)
        matches = [t for t in self.tables if css_class is None or css_class in t.attrs.get("class", "")]
        assert matches, f"no table of class {css_class}"
        return matches[0]

    def chart(self, label: str) -> Chart:
        found = [c for c in self.charts if c.label == label]
        assert found, (label, [c.label for c in self.charts])
        return found[0]


def read(path: Path) -> Page:
    return Page(Path(path).read_text(encoding="utf-8"))


# --- the browser ---------------------------------------------------------------------------------------


def chromium() -> str:
    """The headless browser; `make test` installs it (scripts/ensure-chromium), so its absence is a failure."""
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    assert found, "headless Chromium is missing: run scripts/ensure-chromium (make test does)"
    return found


def screenshot(page: Path, png: Path, profile: Path, width: int = 1400, height: int = 2000) -> Path:
    """Chromium's rendering of `page`, with every way to the network closed."""
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # any name lookup fails: nothing can be fetched
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={width},{height}",
        Path(page).resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and png.is_file(), done.stderr[-2000:]
    return png


def pixels(png: Path) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced PNG, such as Chromium writes."""
    data = Path(png).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{png}: not a PNG"
    offset, chunks, header = 8, [], None
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"{png}: unexpected PNG format {header}"
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    position = 0
    for _ in range(height):
        kind = raw[position]
        line = bytearray(raw[position + 1 : position + 1 + stride])
        position += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def _rows(png: Path) -> tuple[int, list[bytes]]:
    """The image's RGB rows: Pillow's decoder when it is installed (fast), else `pixels` (zlib only)."""
    try:
        from PIL import Image
    except ImportError:
        width, _, rows = pixels(png)
        return width, rows
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        data = rgb.tobytes()
    return width, [data[y * width * 3 : (y + 1) * width * 3] for y in range(height)]


def ink(png: Path, step: int = 4) -> tuple[float, float]:
    """(share of sampled pixels that are not white, the rightmost inked column as a share of the width)."""
    width, rows = _rows(png)
    channels = len(rows[0]) // width
    inked = sampled = 0
    rightmost = 0
    for row in rows[::step]:
        for x in range(0, width, step):
            r, g, b = row[x * channels : x * channels + 3]
            sampled += 1
            if min(r, g, b) < 235:
                inked += 1
                rightmost = max(rightmost, x)
    return inked / sampled, rightmost / width
