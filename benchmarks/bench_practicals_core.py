"""Size and run time of the practicals' core path (issue 12's one-hour budget).

The core path is everything a session must get through: the introduction,
Part I and Part II up to and including "Results" (the sources
``notebooks/practicals/00_*`` to ``30_*``). Exercises, bonus and appendix
are not part of it.

Words are counted in the markdown cells of those sources: whitespace-separated
tokens, LaTeX, headings and picture lines included, fenced code blocks (the
collapsed solutions' code) excluded. Compute is the
wall time (and the process's CPU time, less sensitive to a busy machine) of
running their code cells in order in one namespace, as the notebook does,
with plots drawn off-screen and progress bars off.

Run from the repository root::

    python benchmarks/bench_practicals_core.py           # words and compute
    python benchmarks/bench_practicals_core.py --words   # words only (instant)
"""

import argparse
import contextlib
import io
import os
import pathlib
import platform
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORE = ("00_", "10_", "20_", "30_")  # file-name prefixes of the core path

sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

import build_notebooks


def core_sources():
    """``[(name, cells), ...]`` of the core path's sources, in notebook order."""
    folder = ROOT / "notebooks" / "practicals"
    return [(path.name, build_notebooks.parse_source(path.read_text("utf-8"),
                                                     path.name))
            for path in sorted(folder.glob("*.py")) if path.name.startswith(CORE)]


FENCED = re.compile(r"```.*?```", re.DOTALL)


def words(cells):
    """Whitespace-separated tokens in the markdown cells, code blocks excluded."""
    return sum(len(FENCED.sub(" ", cell.source).split())
               for cell in cells if cell.kind == "markdown")


def run(cells, namespace):
    """Run the code cells; return the wall and CPU seconds they took."""
    start, cpu = time.perf_counter(), time.process_time()
    for cell in cells:
        if cell.kind == "code":
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(cell.source, cell.origin, "exec"), namespace)  # noqa: S102
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", action="store_true", help="count words only")
    args = parser.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.chdir(ROOT)
    sources = core_sources()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average (1 min) "
          f"{load:.2f} at start\n")
    print("| source | words | wall s | CPU s |\n| --- | ---: | ---: | ---: |")
    namespace = {"__name__": "__main__"}
    totals = [0, 0.0, 0.0]
    for name, cells in sources:
        seconds = (float("nan"),) * 2 if args.words else run(cells, namespace)
        for k, value in enumerate((words(cells), *seconds)):
            totals[k] += value
        print(f"| {name} | {words(cells)} | {seconds[0]:.1f} | {seconds[1]:.1f} |")
    print(f"| **core path** | **{totals[0]}** | **{totals[1]:.1f}** | "
          f"**{totals[2]:.1f}** |")
    if not args.words:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\nload average (1 min) at the end: {load:.2f}")


if __name__ == "__main__":
    main()
