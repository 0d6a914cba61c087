"""Workload W1 alone (kept for old command lines): ``benchmarks/run.py --only W1``.

Usage: ``python benchmarks/w1.py [run.py options]``, e.g. ``--repeats 5 --dtypes float64``.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--only", "W1", *sys.argv[1:]]))
