"""Run every benchmark under bench/ (`make bench`), or their short smoke variants (`--quick`)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def benchmark_modules() -> list[str]:
    return sorted(f"bench.{info.name}" for info in pkgutil.iter_modules([str(BENCH_DIR)])
                  if info.name.endswith("_bench"))


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    failures = []
    for module in benchmark_modules():
        print(f"== {module}{' --quick' if quick else ''}", flush=True)
        result = subprocess.run([sys.executable, "-m", module, *(["--quick"] if quick else [])],
                                cwd=BENCH_DIR.parent)
        if result.returncode != 0:
            failures.append(module)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
