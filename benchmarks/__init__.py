"""Benchmark harness of torchsnn: ``python -m benchmarks.run`` (see benchmarks/README.md).

Performance figures come from here only, as ratios against Brian2 / NEST measured in the same invocation on the
CPU (absolute figures count only on a GPU).
"""
