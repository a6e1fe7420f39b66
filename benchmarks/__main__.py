"""`python -m benchmarks` (`make bench`): every benchmark under benchmarks/, one after another.

Each area's benchmark is a package `benchmarks/<area>/` with a `__main__.py`, runnable alone as
`python -m benchmarks.<area>`; this runs each in its own process and reports which ones failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    names = sorted(p.parent.name for p in HERE.glob("*/__main__.py"))
    wanted = argv if argv else names
    failed = []
    for name in wanted:
        if name not in names:
            print(f"no benchmark {name!r}; there are: {', '.join(names)}", file=sys.stderr)
            return 2
        print(f"=== benchmarks.{name} ===", flush=True)
        if subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}"], cwd=HERE.parent, check=False
        ).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
