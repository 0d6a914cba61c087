"""The sweep's Pareto front, table and plots."""
import csv

from refode.sweep import FIELDS, format_table, pareto_front, write_report


def test_pareto_front_keeps_only_undominated_points():
    points = [(3, 0.9), (1, 0.5), (2, 0.5), (2, 0.7), (4, 0.8), (1, 0.4)]
    assert pareto_front(points) == [(1, 0.5), (2, 0.7), (3, 0.9)]
    assert pareto_front([]) == []


def _row(i, **kw):
    return {**{f: None for f in FIELDS}, "id": f"c{i}", "basis": "legendre", "n_basis": 2,
            "method": "projection", "stats": "project", "scheme": "euler", "n_steps": 2,
            "status": "ok", "accuracy": 0.1 * i, "loss": 1.0 / 3, "n_parameters": 10 * i,
            "l2_error": 0.5, "seconds": 0.01 * i, **kw}


def test_report_writes_exact_csv_json_and_two_pngs(tmp_path):
    rows = [_row(1), _row(2, stats="recalibrate"),
            _row(3, status="failed", accuracy=None, error="BasisError: n >= 2")]
    paths = write_report(rows, str(tmp_path))
    assert sorted(paths) == ["csv", "json", "pareto_parameters", "pareto_time"]
    with open(paths["csv"]) as fh:
        table = list(csv.DictReader(fh))
    assert [r["id"] for r in table] == ["c1", "c2", "c3"]
    assert float(table[0]["loss"]) == 1.0 / 3 and table[2]["accuracy"] == ""
    for key in ("pareto_parameters", "pareto_time"):
        with open(paths[key], "rb") as fh:
            assert fh.read(4) == b"\x89PNG"
    text = format_table(rows)
    assert "failed: BasisError" in text and "20.00%" in text
