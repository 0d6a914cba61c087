"""Validation experiments of refode on real data (scripts run from the repository root,
e.g. ``python validation/tagging.py --data DIR``; importable for their smoke tests)."""
