"""Fuzz benchmark: 100,000+ hostile OTLP requests against the decoders and the receiver.

Three runs, each reporting cases, answers, slowest case and memory (RSS) before and after:

Cases: a pool of hypothesis-drawn hostile requests (tests/reliability/otlp_strategies.py: extreme values,
junk-spliced JSON, deep nesting, garbage, corrupt gzip), then seeded byte-level mutations of the pool
(drawing from hypothesis costs ~40 ms a case; a mutation costs microseconds).

1. `codec`: cases through `decode_request` and the receiver's contract conversion (no database);
   only a PayloadError may come out.
2. `view`: cases POSTed through the real receiver view (Django test client) into a throwaway
   database `<db>_fuzz_bench`; only 200, 400, 413 or 415 may come back.
3. `atheris`: coverage-guided fuzzing (libFuzzer) of the same decode + conversion, in a child process
   with libFuzzer's own per-case timeout and RSS limit; skipped with a note when atheris is missing.

    python -m bench.fuzz_bench              # 100,000 codec + 10,000 view + 200,000 atheris cases
    python -m bench.fuzz_bench --quick      # 5,000 + 500 + 5,000: a smoke run
"""

from __future__ import annotations

import argparse
import heapq
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

MAX_BODY_BYTES = 1024 * 1024
SLOWEST_ALLOWED_S = 2.0
MAX_RSS_GROWTH_MB = 200
CLEAN_ANSWERS = {200, 400, 413, 415}
INGEST_TOKEN = "fuzz-bench-token-0123456789abcdef"
SLOWEST_MARK = "slowest case s: "
REPLAYED_CASES = 5
ATHERIS_TIMEOUT_S = 30  # libFuzzer's hang limit; seconds-long stalls happen on the shared machine


@dataclass
class RunReport:
    name: str
    cases: int = 0
    answers: Counter = field(default_factory=Counter)
    slowest_s: float = 0.0
    replayed_slowest_s: float = 0.0  # the slowest cases run again: a real hang is slow every time
    rss_start_mb: float = 0.0
    rss_end_mb: float = 0.0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (not self.failures and self.replayed_slowest_s < SLOWEST_ALLOWED_S
                and self.rss_end_mb - self.rss_start_mb < MAX_RSS_GROWTH_MB)

    def line(self) -> str:
        answers = ", ".join(f"{key}: {count}" for key, count in sorted(self.answers.items()))
        return (f"| {self.name} | {self.cases:,} | {answers} | {self.slowest_s * 1000:.0f} ms "
                f"(replayed: {self.replayed_slowest_s * 1000:.0f} ms) | "
                f"{self.rss_start_mb:.0f} → {self.rss_end_mb:.0f} MB | {self.seconds:.0f} s | "
                f"{'pass' if self.passed else 'FAIL: ' + '; '.join(self.failures[:3])} |")


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kaiku_ops.settings")
    django.setup()


def convert(signal, message):
    """What the receiver does between decoding and storing: the contract conversion of every item."""
    from django.utils import timezone

    from telemetry.ingest import logs, metrics, traces
    from telemetry.ingest.outcome import IngestOutcome, TimeWindow
    from telemetry.otlp import OtlpSignal

    window = TimeWindow.around(timezone.now())
    outcome = IngestOutcome(signal)
    if signal is OtlpSignal.METRICS:
        metrics.metric_points(message, outcome, window, metrics.enabled_flags())
    elif signal is OtlpSignal.LOGS:
        logs.log_rows(message, outcome, window)
    else:
        traces.trace_rows(message, outcome, window, traces.TraceSelection.from_settings())
    return outcome


def decode_and_convert(request) -> str:
    """The answer class a receiver would give: 'partial' / 'ok', or the PayloadError's HTTP status."""
    from telemetry.otlp import PayloadError, decode_request

    try:
        message = decode_request(request.signal, request.body, request.content_type, request.content_encoding,
                                 MAX_BODY_BYTES)
    except PayloadError as error:
        return str(error.http_status)
    return "partial" if convert(request.signal, message).rejected else "ok"


# --- case generation: a hypothesis pool, then cheap seeded mutations of it ------------------------------

def hypothesis_pool(size: int) -> list:
    """`size` hostile requests from the shared strategies (slow to draw: ~40 ms each)."""
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.reliability.otlp_strategies import hostile_requests

    pool = []

    @settings(max_examples=size, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(request=hostile_requests())
    def collect(request) -> None:
        pool.append(request)

    collect()
    return pool


def mutated(pool: list, rng: random.Random):
    """A pool case with its bytes flipped, cut, duplicated or spliced, maybe re-typed or gzipped."""
    from telemetry.otlp import JSON, PROTOBUF

    case = rng.choice(pool)
    body = bytearray(case.body)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        operation = rng.randrange(5)
        at = rng.randrange(len(body) + 1)
        if operation == 0 and body:
            body[at % len(body)] = rng.randrange(256)
        elif operation == 1:
            del body[at:at + rng.randint(1, 64)]
        elif operation == 2:
            body[at:at] = body[at:at + rng.randint(1, 256)] * rng.randint(1, 4)
        elif operation == 3:
            other = rng.choice(pool).body
            cut = rng.randrange(len(other) + 1)
            body[at:] = other[cut:]
        else:
            body[at:at] = rng.choice([b"\x00", b"\xff" * 9, b'"', b"{", b"]", b"\\u0000", b"1e999", b"-0"])
    content_type = case.content_type if rng.random() < 0.8 else rng.choice([PROTOBUF, JSON])
    if rng.random() < 0.1:
        return replace(case, body=zlib.compress(bytes(body), wbits=31), content_type=content_type,
                       content_encoding="gzip")
    return replace(case, body=bytes(body), content_type=content_type, content_encoding=None)


def cases(pool: list, count: int, seed: int):
    rng = random.Random(seed)
    yield from pool[:count]
    for _ in range(count - len(pool)):
        yield mutated(pool, rng)


def timed(one_case, case, report: RunReport) -> tuple[str, float]:
    started = time.perf_counter()
    try:
        answer = one_case(case)
    except Exception as error:  # anything escaping is what a 500 would be: the finding
        report.failures.append(f"{type(error).__name__}: {str(error)[:200]} for {case!r:.200}")
        answer = "exception"
    return answer, time.perf_counter() - started


def fuzz_run(report: RunReport, pool: list, count: int, seed: int, one_case) -> RunReport:
    report.rss_start_mb = rss_mb()
    started = time.perf_counter()
    slowest: list[tuple[float, int, object]] = []  # a min-heap of the slowest cases
    for index, case in enumerate(cases(pool, count, seed)):
        answer, elapsed = timed(one_case, case, report)
        report.cases += 1
        report.answers[answer] += 1
        heapq.heappush(slowest, (elapsed, index, case))
        if len(slowest) > REPLAYED_CASES:
            heapq.heappop(slowest)
    report.seconds = time.perf_counter() - started
    report.rss_end_mb = rss_mb()
    # The machine is shared: a case is slow only if it is slow on every replay, not once under load.
    report.slowest_s = max((elapsed for elapsed, _, _ in slowest), default=0.0)
    report.replayed_slowest_s = max((min(timed(one_case, case, report)[1] for _ in range(3))
                                     for _, _, case in slowest), default=0.0)
    return report


def view_run(pool: list, count: int, seed: int) -> RunReport:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    report = RunReport("receiver view /v1/* (pool + mutations)")
    setup_test_environment()
    settings.TELEMETRY_INGEST_TOKEN = INGEST_TOKEN
    settings.TELEMETRY_MAX_BODY_BYTES = MAX_BODY_BYTES
    original_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"] = {**connection.settings_dict.get("TEST", {}),
                                        "NAME": f"{original_name}_fuzz_bench"}
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    client = Client(raise_request_exception=False)

    def post(request) -> str:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {INGEST_TOKEN}"}
        if request.content_encoding:
            headers["HTTP_CONTENT_ENCODING"] = request.content_encoding
        response = client.generic("POST", request.path, request.body, content_type=request.content_type,
                                  **headers)
        if response.status_code not in CLEAN_ANSWERS:
            report.failures.append(f"{response.status_code} {response.content[:200]!r} for {request!r:.200}")
        return str(response.status_code)

    try:
        return fuzz_run(report, pool, count, seed, post)
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)


# --- atheris (child process) ------------------------------------------------------------------------

def atheris_child(runs: int, slowest_input_path: Path) -> int:
    import atheris

    # Coverage feedback from our own code only: instrumenting Django and protobuf too takes many minutes.
    with atheris.instrument_imports(include=["telemetry"]):
        setup_django()
        from telemetry.ingest import logs, metrics, traces  # noqa: F401  (imported to be instrumented)
        from telemetry.otlp import PROTOBUF, OtlpSignal

    signals = list(OtlpSignal)

    def one_input(data: bytes) -> None:
        if len(data) < 3:
            return
        started = time.perf_counter()
        decode_and_convert(atheris_input_as_request(data))
        elapsed = time.perf_counter() - started
        if elapsed > slowest[0]:
            slowest[0] = elapsed
            slowest_input_path.write_bytes(data)
            print(f"{SLOWEST_MARK}{elapsed:.6f}", flush=True)

    slowest = [0.0]

    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-") as corpus:
        for index, case in enumerate(hypothesis_pool(60)):
            if case.content_encoding is None:
                prefix = bytes([signals.index(case.signal), 0 if case.content_type == PROTOBUF else 1, 0])
                (Path(corpus) / f"seed-{index}").write_bytes(prefix + case.body[:8000])
        atheris.Setup([sys.argv[0], f"-atheris_runs={runs}", "-max_len=8192", f"-timeout={ATHERIS_TIMEOUT_S}",
                       "-rss_limit_mb=2048", f"-artifact_prefix={tempfile.gettempdir()}/fuzz-bench-", corpus],
                      one_input)
        atheris.Fuzz()
    return 0


def atheris_input_as_request(data: bytes):
    """The first three bytes choose signal, encoding and compression; the rest is the body."""
    from telemetry.otlp import JSON, PROTOBUF, OtlpSignal
    from tests.reliability.otlp_strategies import HostileRequest

    signals = list(OtlpSignal)
    return HostileRequest(signals[data[0] % len(signals)], data[3:], (PROTOBUF, JSON)[data[1] % 2],
                          (None, "gzip")[data[2] % 2])


def atheris_run(runs: int) -> RunReport:
    report = RunReport("codec + conversion (atheris, coverage-guided)")
    try:
        import atheris  # noqa: F401
    except ImportError:
        report.failures.append("atheris is not installed (pip install atheris==3.0.0)")
        return report
    started = time.perf_counter()
    slowest_input = Path(tempfile.gettempdir()) / f"fuzz-bench-slowest-{os.getpid()}"
    child = subprocess.Popen([sys.executable, "-m", "bench.fuzz_bench", "--atheris-child", str(runs),
                              "--slowest-input", str(slowest_input)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    process = psutil.Process(child.pid)
    output, peak_rss = [], 0.0
    for line in child.stdout:
        output.append(line)
        try:
            rss = process.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            continue
        if "INITED" in line or not report.rss_start_mb:
            report.rss_start_mb = rss
        peak_rss = max(peak_rss, rss)
    child.wait()
    report.seconds = time.perf_counter() - started
    report.rss_end_mb = peak_rss
    done = [int(line.split()[1]) for line in output if line.startswith("Done ")]
    report.cases = done[-1] if done else 0
    report.slowest_s = max((float(line[len(SLOWEST_MARK):]) for line in output
                            if line.startswith(SLOWEST_MARK)), default=0.0)
    coverage = [line.split("cov: ")[1].split()[0] for line in output if "cov: " in line]
    report.answers["covered edges"] = int(coverage[-1]) if coverage else 0
    if slowest_input.exists():
        replayed = atheris_input_as_request(slowest_input.read_bytes())
        report.replayed_slowest_s = min(timed(decode_and_convert, replayed, report)[1] for _ in range(3))
        slowest_input.unlink()
    # libFuzzer's timeout alarm may go off while atheris exits after "Done": only a missing "Done" fails.
    if not done:
        crash = [line for line in output if "Error" in line or "Traceback" in line or "==" in line]
        report.failures.append(f"exit {child.returncode}: {''.join(crash[-5:])[:400]}")
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few thousand cases")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--atheris-child", type=int, metavar="RUNS", help=argparse.SUPPRESS)
    parser.add_argument("--slowest-input", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.atheris_child:
        return atheris_child(args.atheris_child, args.slowest_input)

    pool_size, codec_cases, view_cases, atheris_runs = ((200, 5_000, 500, 5_000) if args.quick
                                                        else (1_000, 100_000, 10_000, 200_000))
    setup_django()
    logging.getLogger("django.request").setLevel(logging.ERROR)  # one warning per 400 would drown the report
    started = time.perf_counter()
    pool = hypothesis_pool(pool_size)
    print(f"hypothesis pool: {len(pool)} cases in {time.perf_counter() - started:.0f} s", flush=True)
    reports = [
        fuzz_run(RunReport("codec + contract conversion (pool + mutations)"), pool, codec_cases, args.seed,
                 decode_and_convert),
        view_run(pool, view_cases, args.seed + 1),
        atheris_run(atheris_runs),
    ]
    print("| run | cases | answers | slowest case (its replay) | RSS start → end | time | result |")
    print("|---|---|---|---|---|---|---|")
    for report in reports:
        print(report.line())
    print(f"total cases: {sum(report.cases for report in reports):,}")
    return 0 if all(report.passed for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
