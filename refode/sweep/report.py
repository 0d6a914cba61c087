"""The sweep's table (CSV and JSON) and its Pareto plots (PNG, matplotlib Agg).

``results.json`` is the list of cell records (keys :data:`refode.sweep.cell.FIELDS`)
in grid order; ``results.csv`` the same rows. ``pareto_parameters.png`` plots test
accuracy against the parameter count, ``pareto_time.png`` against the inference time;
every successful cell is a point (colour: basis family, marker: statistics policy) and
the Pareto front (no other cell is both smaller/faster and more accurate) is a line.
"""
import csv
import io
import json
import os

from .. import _io
from .cell import FIELDS

#: output files of :func:`write_report`.
FILES = {"csv": "results.csv", "json": "results.json",
         "pareto_parameters": "pareto_parameters.png", "pareto_time": "pareto_time.png"}
#: markers of the statistics policies in the plots.
MARKERS = {"project": "o", "recalibrate": "s", "positive": "^"}
#: (x field, x label, file key) of the two plots.
PLOTS = (("n_parameters", "parameters", "pareto_parameters"),
         ("seconds", "inference time (s)", "pareto_time"))
DPI = 100


def pareto_front(points):
    """Points not dominated by another (smaller-or-equal x and larger y), sorted by x.

    Parameters
    ----------
    points : list of (x, y)

    Returns
    -------
    list of (x, y)
    """
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _csv_text(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else
                             repr(row[k]) if isinstance(row[k], float) else row[k])
                         for k in FIELDS})
    return buffer.getvalue()


def write_plots(rows, out):
    """The two Pareto plots; returns ``{key: path}``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    families = sorted({r["basis"] for r in ok})
    colours = {f: plt.get_cmap("tab10")(i % 10) for i, f in enumerate(families)}
    paths = {}
    for field, label, key in PLOTS:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        for family in families:
            for stats, marker in MARKERS.items():
                pts = [(r[field], 100 * r["accuracy"]) for r in ok
                       if r["basis"] == family and r["stats"] == stats]
                if pts:
                    ax.scatter(*zip(*pts), marker=marker, color=colours[family], alpha=0.75,
                               label=f"{family}, stats {stats}")
        front = pareto_front([(r[field], 100 * r["accuracy"]) for r in ok])
        if front:
            ax.step(*zip(*front), where="post", color="black", linewidth=1, marker="o",
                    markerfacecolor="none", markersize=10, label="Pareto front")
        if field == "seconds":
            ax.set_xscale("log")
        ax.set(xlabel=label, ylabel="test accuracy (%)",
               title=f"sweep: accuracy vs {label} ({len(ok)} cells)")
        if ok:
            ax.legend(fontsize=6, loc="lower right")
        fig.tight_layout()
        paths[key] = os.path.join(out, FILES[key])
        with _io.atomic_path(paths[key]) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
        plt.close(fig)
    return paths


def write_report(rows, out):
    """``results.csv``, ``results.json`` and the plots in ``out``; returns ``{key: path}``."""
    paths = {"csv": os.path.join(out, FILES["csv"]), "json": os.path.join(out, FILES["json"])}
    _io.write_text(paths["json"], json.dumps(rows, indent=1) + "\n")
    _io.write_text(paths["csv"], _csv_text(rows))
    paths.update(write_plots(rows, out))
    return paths


def format_table(rows):
    """The rows as a fixed-width text table (``refode sweep``'s summary)."""
    head = (f"{'basis':<19}{'K':>3}  {'method':<14}{'stats':<12}{'scheme':<9}{'N':>3}  "
            f"{'accuracy':>8}  {'params':>8}  {'L2 err':>8}  {'ms':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lead = (f"{r['basis']:<19}{r['n_basis']:>3}  {r['method']:<14}{r['stats']:<12}"
                f"{r['scheme']:<9}{r['n_steps']:>3}  ")
        if r["status"] != "ok":
            lines.append(lead + f"failed: {r['error']}"[:120])
            continue
        lines.append(lead + f"{100 * r['accuracy']:7.2f}%  {r['n_parameters']:>8}  "
                     f"{r['l2_error']:8.2e}  {1e3 * r['seconds']:8.1f}")
    return "\n".join(lines)
