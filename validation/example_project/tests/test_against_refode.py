"""Run with ``pytest --refode-golden DIR``: one test per golden file of DIR."""


def test_matches_refode(refode_golden_case, refode_implementation):
    refode_golden_case.check(refode_implementation)
