#!/usr/bin/env python3
"""Record a finished cold build's timeline for tests/unit/test_make_progress.py's replay.

    python3 tests/data/build/record_object_times.py OBJ_DIR MAKE_START_EPOCH MAKE_S NOTE > FILE

Writes, sorted, the seconds from make's start to each object's mtime in OBJ_DIR (*.o and
*.a: what the build counter counts, CC/AS and AR; host tools under scripts/ and tools/ are
left out, the counter does not count HOSTCC), after a header naming the recording and the
make's true end (`# end MAKE_S`, make_s from the build's metadata.json). Run it right after
the cold build, before any variant build rewrites loop.o and the link's objects.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

SKIP = ("scripts", "tools")


def object_times(obj_dir: Path, start: float) -> list[float]:
    times = []
    for path in obj_dir.rglob("*"):
        rel = path.relative_to(obj_dir)
        if rel.parts[0] in SKIP or path.suffix not in (".o", ".a") or not path.is_file():
            continue
        times.append(round(path.stat().st_mtime - start, 1))
    return sorted(times)


def main(argv: list[str]) -> int:
    obj_dir, start, make_s, note = Path(argv[0]), float(argv[1]), float(argv[2]), argv[3]
    times = object_times(obj_dir, start)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"# {note}: seconds from make's start to each .o/.a file's mtime in the object")
    print(f"# directory (host tools in scripts/ and tools/ left out), sorted; recorded {stamp}")
    print(f"# end {make_s:g} (make_s in the build's metadata.json)")
    print("\n".join(f"{t:g}" for t in times))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
