"""Sweeps over discretizations of a trained model, run as tasks on Dask ``distributed``.

A grid of (basis family, K, projection/interpolation, statistics policy, scheme, N)
cells (:mod:`refode.sweep.config`), each evaluated on data (:mod:`refode.sweep.cell`),
run and persisted cell by cell (:mod:`refode.sweep.run`), reported as a table and
Pareto plots (:mod:`refode.sweep.report`). The command is ``refode sweep``.
"""
from .cell import FIELDS, TIMING_FIELDS, compute_cell
from .config import cell_id, load_config, parse_config
from .report import format_table, pareto_front, write_report
from .run import SweepResult, run_sweep, write_inputs

__all__ = ["run_sweep", "write_inputs", "SweepResult", "load_config", "parse_config", "cell_id",
           "compute_cell", "write_report", "format_table", "pareto_front", "FIELDS",
           "TIMING_FIELDS"]
