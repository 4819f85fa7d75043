"""Start-up of the embedded PostgreSQL: cold (initdb, server start, CREATE DATABASE on a fresh data directory, what
a first `make run` or `make test` pays) and warm (the server already runs: what every later process pays).

    .venv/bin/python -m bench.embedded_start_bench [--rounds 7] [--compare-rev GIT_REV]

`--compare-rev` loads `kaiku_ops/embedded.py` as it was at that revision (b5cbf87: pgserver's PostgreSQL 16.2)
and runs it interleaved with today's, each round on its own temporary directory, so a busy machine slows both.
Prints per-round times and medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from kaiku_ops import embedded

ROOT = Path(__file__).resolve().parent.parent


def module_at(rev: str) -> ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:kaiku_ops/embedded.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="embedded-at-")) / "embedded_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("embedded_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def one_round(module: ModuleType) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="embedded-start-") as data_dir:
        server = module.EmbeddedPostgres(Path(data_dir))
        try:
            started = time.monotonic()
            server.start()
            cold = time.monotonic() - started
            started = time.monotonic()
            server.start()
            warm = time.monotonic() - started
        finally:
            server.stop()
    return cold, warm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compare-rev", help="also run kaiku_ops/embedded.py of this git revision, interleaved")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sides = {"today": embedded}
    if args.compare_rev:
        sides = {args.compare_rev: module_at(args.compare_rev), **sides}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for round_number in range(1, args.rounds + 1):
        for name, module in sides.items():
            cold, warm = one_round(module)
            times[name].append((cold, warm))
            print(f"round {round_number} {name}: cold {cold:.2f} s, warm {warm * 1000:.1f} ms", flush=True)
    for name, rounds in times.items():
        colds, warms = [c for c, _ in rounds], [w for _, w in rounds]
        print(f"{name}: cold median {statistics.median(colds):.2f} s (min {min(colds):.2f}), "
              f"warm median {statistics.median(warms) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
