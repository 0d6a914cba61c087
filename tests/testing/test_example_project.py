"""validation/example_project checks itself through the plugin: passes, or fails readably."""
import pytest

from .conftest import EXAMPLE
from .test_plugin import golden_subset  # noqa: F401  (the module fixture)

pytest.importorskip("torch")  # imported once here, before the project's runs

#: per deliberate bug (TINY_ODE_BUG): a text the failure table must show.
BUGS = {
    "piece": "/outputs/logits",
    "limit": "/outputs/logits",
    "momentum": "/outputs/state/",
}
#: the table's header line.
TABLE = "max_abs    max_rel worst index"


def test_correct_implementation_passes(run_inprocess, golden_subset):  # noqa: F811
    code, reports = run_inprocess(EXAMPLE, "--refode-golden", golden_subset,
                                  env={"TINY_ODE_BUG": ""})
    assert code == 0, reports.failures()
    # two golden files it implements, the tagger skipped, two configurations of its own
    assert reports.outcomes() == {"passed": 4, "failed": 0, "skipped": 1}


def test_without_the_option_the_golden_test_is_skipped(run_inprocess):
    code, reports = run_inprocess(EXAMPLE, env={"TINY_ODE_BUG": ""})
    assert code == 0 and reports.outcomes() == {"passed": 2, "failed": 0, "skipped": 1}
    skipped = [r for r in reports.reports if r.outcome == "skipped"]
    assert "pass --refode-golden DIR" in str(skipped[0].longrepr)


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_each_bug_fails_with_a_table(bug, run_inprocess, golden_subset):  # noqa: F811
    code, reports = run_inprocess(EXAMPLE, "--refode-golden", golden_subset, "-k",
                                  "matches_refode", env={"TINY_ODE_BUG": bug})
    failures = reports.failures()
    assert code == 1 and failures, reports.outcomes()
    for text in failures.values():
        assert TABLE in text and BUGS[bug] in text and "arrays FAIL" in text, text
    if bug == "limit":  # only a stage with c = 1 on a piece boundary: rk4 with K = N = 2
        assert [n.split("[")[1] for n in failures] == ["net_pc2_rk4_n2_f64_train]"]
    else:
        assert len(failures) == 2, failures
    if bug == "momentum":  # outputs and gradients are right: only the statistics differ
        for text in failures.values():
            rows = [l.lstrip("E ") for l in text.splitlines()]  # pytest's "E   " prefix
            verdicts = {r.split()[0]: r.split()[-1] for r in rows
                        if r.startswith(("/outputs/", "/gradients/"))}
            assert {v for k, v in verdicts.items() if not k.startswith("/outputs/state/")} \
                == {"pass"}, text
            assert {v for k, v in verdicts.items() if k.startswith("/outputs/state/")} \
                == {"FAIL"}, text
