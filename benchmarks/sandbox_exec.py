"""Executions per second of simple shell commands: sandboxed vs bare.

Three ways to run the same commands, interleaved in rounds so that load from
other processes hits all of them alike:

  bare      subprocess.run(cmd, shell=True, cwd=<fixture copy>)  (/bin/sh)
  bare-bash the same with executable=/bin/bash (the sandbox's shell)
  sandbox   Sandbox.run(cmd) on one persistent worker (bwrap by default),
            including limits, output capture and the side-effect digest
  fresh     run_once(cmd): a new bwrap + worker per command

plus the cost of restore(snapshot), the step tree search repeats.

Usage:  python benchmarks/sandbox_exec.py [--seconds 2] [--backend auto]
Prints a table of executions/s and the ratio of per-command cost vs bare.
"""

import argparse
import os
import subprocess
import tempfile
import time

from omnigym.sandbox import Sandbox, SandboxConfig, run_once
from omnigym.sandbox.fsdiff import normalize_fixture, write_entries

COMMANDS = ["echo hi", "true", "ls", "wc -l data.txt", "sort data.txt | uniq -c | head -3"]
FIXTURE = {"data.txt": "".join(f"line {i % 17}\n" for i in range(200)),
           "notes/readme.md": "# notes\n", "run.sh": {"content": "echo run\n", "mode": 0o755}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.5, help="time per command per method per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-bwrap-per-command column")
    args = ap.parse_args()

    host_dir = tempfile.mkdtemp(prefix="sandbox-bench-")
    write_entries(host_dir, normalize_fixture(FIXTURE))
    cfg = SandboxConfig(backend=args.backend)
    methods = {
        "bare": lambda c: subprocess.run(c, shell=True, cwd=host_dir, capture_output=True),
        "bare-bash": lambda c: subprocess.run(c, shell=True, cwd=host_dir, capture_output=True,
                                              executable="/bin/bash"),
    }
    sb = Sandbox(FIXTURE, cfg)
    methods["sandbox"] = sb.run
    if not args.no_fresh:
        methods["fresh"] = lambda c: run_once(c, FIXTURE, cfg)
    for c in COMMANDS:  # sanity: same output everywhere
        out = sb.run(c).stdout
        ref = subprocess.run(c, shell=True, cwd=host_dir, capture_output=True, text=True).stdout
        assert out == ref, (c, out, ref)

    stats = {(m, c): [0, 0.0] for m in methods for c in COMMANDS}
    for _ in range(args.rounds):
        for c in COMMANDS:
            for m, fn in methods.items():
                budget = args.seconds / (4 if m == "fresh" else 1)
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < budget:
                    fn(c)
                    n += 1
                s = stats[(m, c)]
                s[0] += n
                s[1] += time.perf_counter() - t0
    snap, n_restore = sb.snapshot(), 300
    t0 = time.perf_counter()
    for _ in range(n_restore):
        sb.restore(snap)
    unchanged = n_restore / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(n_restore // 3):
        sb.restore(snap)
        sb.run("echo x >> data.txt")
    mutate = (n_restore // 3) / (time.perf_counter() - t0)
    sb.close()

    rate = {k: n / t for k, (n, t) in stats.items()}
    names = list(methods)
    print(f"backend={sb.backend}  cores={os.cpu_count()}  load={os.getloadavg()[0]:.2f}")
    head = f"{'command':34s}" + "".join(f"{m + ' /s':>13s}" for m in names) + \
        "".join(f"{m + '/bare':>14s}" for m in names if m != "bare")
    print(head)
    print("-" * len(head))
    for c in COMMANDS:
        row = f"{c:34s}" + "".join(f"{rate[(m, c)]:13.0f}" for m in names)
        row += "".join(f"{rate[('bare', c)] / rate[(m, c)]:13.2f}x" for m in names if m != "bare")
        print(row)
    tot = {m: sum(stats[(m, c)][0] for c in COMMANDS) / sum(stats[(m, c)][1] for c in COMMANDS) for m in names}
    print(f"{'all':34s}" + "".join(f"{tot[m]:13.0f}" for m in names)
          + "".join(f"{tot['bare'] / tot[m]:13.2f}x" for m in names if m != "bare"))
    print("(x = per-command cost relative to bare subprocess.run(shell=True); lower is better)")
    print(f"tree search: restore(snapshot) {unchanged:.0f}/s when nothing changed; "
          f"restore + a mutating command {mutate:.0f} pairs/s")


if __name__ == "__main__":
    main()
