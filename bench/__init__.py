"""The benchmark: a deterministic dataset, a hand-written floor app, and the load runs.

Not part of the test run and not installed with the service; see docs/performance.md.
"""
