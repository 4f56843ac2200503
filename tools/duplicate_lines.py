"""Count places that share a run of >= 6 normalised code lines (house check for issue 12).

Usage: python tools/duplicate_lines.py [src/protdistill] [--list]
Blank lines, comments, imports, docstring delimiters and lone brackets are skipped; each place is
a (file, 40-line region) pair, so one long shared block counts once.
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

WINDOW = 6


def shared_places(root: Path) -> set[tuple[str, int, str]]:
    windows: dict[str, set[tuple[str, int]]] = collections.defaultdict(set)
    for path in sorted(root.rglob("*.py")):
        lines = []
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = raw.strip()
            skip = text.startswith(("#", "import ", "from ", '"""'))
            if not text or skip or re.fullmatch(r"[\)\]\}:,]*", text):
                continue
            lines.append((number, text))
        for k in range(len(lines) - WINDOW + 1):
            key = "\n".join(t for _, t in lines[k : k + WINDOW])
            windows[key].add((str(path), lines[k][0]))
    places = set()
    for locations in windows.values():
        ordered = sorted(locations)
        for i, (file_a, line_a) in enumerate(ordered):
            for file_b, _ in ordered[i + 1 :]:
                places.add((file_a, line_a // 40, file_b))
    return places


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    found = shared_places(Path(args[0] if args else "src/protdistill"))
    print(len(found))
    if "--list" in sys.argv:
        for place in sorted(found):
            print(*place)
