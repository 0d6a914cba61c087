"""refode.testing.assertions: verdicts as `refode check`, and a readable table on failure."""
import h5py
import numpy as np
import pytest

from refode.errors import FormatError
from refode.io import golden
from refode.testing import (GoldenCase, assert_arrays_close, assert_close_to_golden,
                            compare_with_golden, flatten)


@pytest.fixture(scope="module")
def expected(net_golden):
    return dict(GoldenCase(net_golden).expected)


def test_exact_candidate_passes_with_zero_errors(net_golden, expected):
    rows = assert_close_to_golden(net_golden, expected)
    assert len(rows) == len(expected)
    assert all(r["passed"] and r["max_abs"] == 0 for r in rows)
    assert rows[0]["array"] == "/outputs/logits"  # outputs first in the table


def test_failure_table_names_array_errors_and_worst_index(net_golden, expected):
    bad = dict(expected)
    name = "gradients/params/block1.conv1.weight"
    bad[name] = bad[name].copy()
    bad[name][1, 0, 1, 2, 0] += 0.5
    with pytest.raises(AssertionError) as info:
        assert_close_to_golden(net_golden, bad)
    text = str(info.value)
    assert f"1 of {len(expected)} arrays FAIL" in text
    line = next(l for l in text.splitlines() if l.startswith("/" + name))
    assert "(1, 0, 1, 2, 0)" in line and line.endswith("FAIL")
    assert "5.000e-01" in line  # the max abs error
    assert "rtol 1e-09, atol 1e-13" in text


def test_missing_shape_and_nonfinite_fail_with_a_note(net_golden, expected):
    bad = dict(expected)
    del bad["outputs/loss"]
    bad["outputs/logits"] = bad["outputs/logits"][:1]
    bad["gradients/inputs/x"] = np.full_like(bad["gradients/inputs/x"], np.nan)
    bad["gradients/params/stem_conv.weigth"] = np.zeros(1)  # misspelt: reported as ignored
    with pytest.raises(AssertionError) as info:
        assert_close_to_golden(net_golden, bad)
    text = str(info.value)
    assert "FAIL (missing)" in text and "FAIL (shape (1, 3))" in text
    assert "FAIL (non-finite)" in text
    assert "ignored" in text and "stem_conv.weigth" in text


def test_verdict_is_refode_check_on_a_candidate_file(tmp_path, net_golden, expected):
    cand = tmp_path / "cand.h5"
    with h5py.File(cand, "w") as fh:
        for name, value in expected.items():
            fh.create_dataset(name, data=value * (1 + 2e-9) if name == "outputs/loss" else value)
    rows, rtol, atol, _ = compare_with_golden(net_golden, cand)
    check_rows, _, _ = golden.compare(net_golden, cand)
    assert {r["array"]: r["passed"] for r in rows} == \
        {r["array"]: r["passed"] for r in check_rows}
    assert not next(r for r in rows if r["array"] == "/outputs/loss")["passed"]
    assert_close_to_golden(net_golden, cand, rtol=1e-8)  # override of the tolerance


def test_nested_mappings_and_tensor_like_values(net_golden, expected):
    class Tensor:  # what the helpers need of a torch tensor
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    nested = {}
    for name, value in expected.items():
        node = nested
        *parents, leaf = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = Tensor(value)
    assert set(flatten(nested)) == set(expected)
    assert_close_to_golden(net_golden, nested)


def test_malformed_golden_raises_format_error(tmp_path, expected):
    path = tmp_path / "not_golden.h5"
    with h5py.File(path, "w") as fh:
        fh.attrs["format"] = "something"
    with pytest.raises(FormatError, match="@format"):
        assert_close_to_golden(path, expected)


def test_assert_arrays_close_table():
    assert_arrays_close({"state/a": np.ones(3)}, {"state/a": np.ones(3)}, 0.0, 0.0)
    with pytest.raises(AssertionError, match=r"(?s)mine: 1 of 1 arrays FAIL.*\(2,\)"):
        assert_arrays_close({"state/a": np.ones(3)}, {"state/a": np.array([1, 1, 2.0])},
                            1e-9, 0.0, title="mine")
