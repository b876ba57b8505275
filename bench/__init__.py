"""Benchmarks: each prints its own figures and ratios against named peers in one run."""
