"""How much does ``import hypersdk`` cost, next to ``import pydo`` (DigitalOcean's client)?

Each import runs in a fresh interpreter (so nothing is cached in-process), alternating
hypersdk and pydo for several rounds; the figure is the wall time of the interpreter
minus that of a bare ``python -c pass`` baseline, median over the rounds. The script also
prints the ten most expensive modules ``-X importtime`` reports for ``import hypersdk``.

    pip install pydo   # benchmark-only dependency
    python benchmarks/bench_import.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import time


def wall(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def top_modules(module: str, count: int = 10) -> list[tuple[int, str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows: list[tuple[int, str]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _self_us, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    contenders = ["hypersdk"]
    if importlib.util.find_spec("pydo") is None:
        print("pydo is not installed (pip install pydo); timing hypersdk alone")
    else:
        contenders.append("pydo")
    times: dict[str, list[float]] = {name: [] for name in ["baseline", *contenders]}
    for _ in range(args.rounds):
        times["baseline"].append(wall("pass"))
        for name in contenders:
            times[name].append(wall(f"import {name}"))
    base = statistics.median(times["baseline"])
    medians = {
        name: statistics.median(values) - base
        for name, values in times.items()
        if name != "baseline"
    }
    print(f"interpreter start (baseline): {base * 1000:7.1f} ms  (median of {args.rounds})")
    for name, value in medians.items():
        print(f"import {name:<9}           : {value * 1000:7.1f} ms  above baseline")
    if "pydo" in medians:
        ratio = medians["hypersdk"] / medians["pydo"]
        print(f"ratio hypersdk / pydo        : {ratio:7.2f}  (target <= 0.5)")
    print("\nslowest modules under `import hypersdk` (cumulative us, -X importtime):")
    for cumulative, name in top_modules("hypersdk"):
        print(f"  {cumulative:>8}  {name}")


if __name__ == "__main__":
    main()
