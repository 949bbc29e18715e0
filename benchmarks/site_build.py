"""Site build speed: a cold `make site` with myst-nb's serial execution vs the parallel pre-execution, in one run.

Each cold build is the command `make site` runs (`sphinx-build -W --keep-going -b html site <out>`) into a fresh
output folder in a temporary directory, so that its doctrees, jupyter_execute/ and jupyter-cache
(<out>/../.jupyter_cache) start empty and every notebook (the 7 lectures and conventions.md) is executed:

- serial: the same conf with `-D parallel_execution_jobs=1`, which switches site/_ext/parallel_execution.py off,
  so myst-nb executes each notebook while Sphinx reads it, one after another (the build before this change);
- parallel: the conf as it is, the uncached notebooks executed by a pool of processes (one per core) before
  Sphinx reads them, then read from the cache.

A third row rebuilds the parallel output with `-E` (every page read again, the cache warm) to show that nothing is
executed twice and that warm builds stay fast. The machine's 1-minute load average after each build is printed
with it: the builds run one after the other, and on a shared machine the load may differ between them. Each row counts, from Sphinx's log, the notebooks myst-nb executed
itself ("Executing notebook") and those it took from the cache ("Using cached notebook"); a parallel build in
which myst-nb executes anything has missed the cache and is reported as such. The last line is
    site_build: cold_s=<parallel> (serial <serial>) speedup=<serial / parallel>x target<=120s: PASS|FAIL

    .venv/bin/python benchmarks/site_build.py [--jobs N] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site"
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5" / "tex-mml-chtml.js"
TARGET_S = 120.0


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def build(out: Path, *options: str) -> dict:
    """One `make site` build into `out`; its wall time and what its log says about execution."""
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", *options, str(SITE), str(out)]
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = done.stdout + done.stderr
    (out.parent / f"build{len(list(out.parent.glob('build*.log'))) or ''}.log").write_text(log, encoding="utf-8")
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}) after {seconds:.0f} s:\n{log[-4000:]}")
    pool = re.search(r"parallel execution: (\d+) of (\d+) notebook\(s\) executed and cached in ([\d.]+) s", log)
    return {"seconds": seconds, "load": os.getloadavg()[0],
            "myst_nb_executed": len(re.findall(r"Executing notebook using", log)),
            "cache_hits": len(re.findall(r"Using cached notebook", log)),
            "pool_executed": int(pool.group(1)) if pool else 0,
            "pool_s": float(pool.group(3)) if pool else 0.0}


def _row(label: str, r: dict) -> None:
    pool = f"{r['pool_executed']:>3} in {r['pool_s']:5.1f} s" if r["pool_executed"] else f"{'-':>13}"
    print(f"{label:<44} {r['seconds']:7.1f} s   {r['myst_nb_executed']:>11}   {pool}   {r['cache_hits']:>10}   "
          f"{r['load']:5.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=cores(), help="processes of the parallel build (default: cores)")
    parser.add_argument("--keep", action="store_true", help="keep the build folders and logs (printed)")
    args = parser.parse_args()
    if not MATHJAX.is_file():
        sys.exit("node_modules/mathjax is missing: run `npm ci` (the site needs MathJax)")
    tmp = Path(tempfile.mkdtemp(prefix="site_build_"))
    try:
        print(f"cold builds of {SITE} into fresh folders under {tmp}; {cores()} cores", flush=True)
        print(f"{'build':<44} {'wall':>9}   {'myst-nb ran':>11}   {'pool ran':>13}   {'cache hits':>10}   load")
        serial = build(tmp / "serial" / "html", "-D", "parallel_execution_jobs=1")
        _row("serial: myst-nb executes while reading", serial)
        parallel = build(tmp / "parallel" / "html", "-D", f"parallel_execution_jobs={args.jobs}")
        _row(f"parallel: pre-executed by {args.jobs} processes", parallel)
        warm = build(tmp / "parallel" / "html", "-E", "-D", f"parallel_execution_jobs={args.jobs}")
        _row("warm, every page read again (-E)", warm)
        notebooks = serial["myst_nb_executed"]
        problems = []
        if parallel["myst_nb_executed"] or parallel["pool_executed"] != notebooks:
            problems.append(f"cache missed: the parallel build ran {parallel['pool_executed']} notebook(s) in its "
                            f"pool and myst-nb ran {parallel['myst_nb_executed']}, of {notebooks}")
        if warm["myst_nb_executed"] or warm["pool_executed"] or warm["cache_hits"] != notebooks:
            problems.append("the warm rebuild executed a notebook again")
        for problem in problems:
            print(f"PROBLEM: {problem}")
    finally:
        if args.keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    cold = parallel["seconds"]
    ok = cold <= TARGET_S and not problems
    print(f"site_build: cold_s={cold:.1f} (serial {serial['seconds']:.1f}) speedup={serial['seconds'] / cold:.2f}x "
          f"target<={TARGET_S:.0f}s: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
