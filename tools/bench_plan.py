"""Plan wall time for growing fleets, to show that planning stays linear in the number of hosts.

    python -m tools.bench_plan [--sizes 1,10,50]

Each size N plans N MTAs and N proxies of the prod stack under the mock engine, in a fresh
process so runs don't share caches, and prints the resource count and wall time.
"""

import argparse
import subprocess
import sys
import time

from tools.mockrun import ROOT, run_stack


def plan_once(size: int) -> int:
    overrides = {
        "kumomta:mtaHosts": [f"mta{i}" for i in range(1, size + 1)],
        "kumomta:proxyHosts": [f"proxy{i}" for i in range(1, size + 1)],
    }
    return len(run_stack("prod", overrides).registrations)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,10,50", help="comma-separated fleet sizes (default 1,10,50)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: plan one size
    args = parser.parse_args()
    if args.one:
        print(plan_once(args.one))
        return 0

    print(f"{'fleet':>8}  {'resources':>9}  {'seconds':>7}  {'ms/host':>7}")
    for size in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "tools.bench_plan", "--one", str(size)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds = time.perf_counter() - started
        print(f"{size:>3}+{size:<4}  {done.stdout.strip():>9}  {seconds:7.2f}  {1000 * seconds / (2 * size):7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
