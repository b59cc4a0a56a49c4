"""Run every benchmark in bench/ one after another and print what each measured.

Usage: python bench/run_all.py [NAME ...]   (names like `intake`, `rules`, `outbox`, `jira`)

Each benchmark is a standalone script (`bench/<name>_bench.py`) that prints ratios measured in
one run; this only runs them in turn so that one command gives the whole picture.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).parent


def main(names: list[str]) -> int:
    scripts = sorted(BENCH_DIR.glob("*_bench.py"))
    if names:
        scripts = [s for s in scripts if s.stem.removesuffix("_bench") in names]
    failures = 0
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], check=False)
        elapsed = time.perf_counter() - started
        status = "ok" if result.returncode == 0 else f"exit {result.returncode}"
        print(f"== {script.stem}: {status} in {elapsed:.1f} s\n", flush=True)
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
