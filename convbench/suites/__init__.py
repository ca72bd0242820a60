"""Suites as data: one TOML file a suite, read by convbench.run.suite."""
