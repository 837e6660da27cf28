"""Rebuild the font subsets committed in facturation_service/fonts/ (see its README.md).

Reads Debian's copies (``apt-get install fonts-noto-core fonts-droid-fallback``) and keeps the
characters an invoice needs: Latin, Greek, Cyrillic and punctuation from Noto Sans; the Chinese,
Japanese and Korean characters of the national standard sets (GB 2312, JIS X 0208, KS X 1001
Hangul, Big5's frequent characters), kana and full-width forms from Droid Sans Fallback.

    .venv/bin/python scripts/subset_invoice_fonts.py
"""

from __future__ import annotations

from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

OUT = Path(__file__).resolve().parents[1] / "facturation_service" / "fonts"
NOTO = Path("/usr/share/fonts/truetype/noto")
DROID = Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf")

LATIN = (
    set(range(0x20, 0x7F))
    | set(range(0xA0, 0x250))  # Latin-1, Latin Extended-A and -B
    | set(range(0x370, 0x530))  # Greek, Cyrillic
    | set(range(0x1E00, 0x1F00))  # Latin Extended Additional
    | set(range(0x2000, 0x2070))  # General Punctuation
    | set(range(0x20A0, 0x20C1))  # currency signs
    | {0x2116, 0x2122, 0x2190, 0x2192, 0x2212, 0x25CF, 0xFFFD}
)


def _double_byte_set(codec: str, lead_bytes: range) -> set[int]:
    """The characters of a legacy double-byte character set, by its lead bytes."""
    found = set()
    for lead in lead_bytes:
        for trail in range(0xA1, 0xFF):
            try:
                found.add(ord(bytes((lead, trail)).decode(codec)))
            except (UnicodeDecodeError, TypeError):
                continue
    return found


CJK = (
    set(range(0x3000, 0x3100))  # CJK punctuation, hiragana, katakana
    | set(range(0xFF00, 0xFFF0))  # full-width and half-width forms
    | _double_byte_set("gb2312", range(0xB0, 0xF8))
    | _double_byte_set("euc_jp", range(0xB0, 0xF5))
    | _double_byte_set("euc_kr", range(0xB0, 0xC9))
    | _double_byte_set("big5", range(0xA4, 0xC7))
)


def subset_font(source: Path, target: Path, codepoints: set[int]) -> None:
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.drop_tables += ["DSIG"]
    font = TTFont(source, recalcTimestamp=False)  # the same bytes on every run
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=codepoints)
    subsetter.subset(font)
    font.save(target)
    print(f"{target.name}: {target.stat().st_size} bytes")


def main() -> None:
    subset_font(NOTO / "NotoSans-Regular.ttf", OUT / "NotoSans-Regular.ttf", LATIN)
    subset_font(NOTO / "NotoSans-Bold.ttf", OUT / "NotoSans-Bold.ttf", LATIN)
    subset_font(DROID, OUT / "DroidSansFallback-cjk.ttf", CJK)


if __name__ == "__main__":
    main()
