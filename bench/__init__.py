"""Side-by-side benchmarks of kallrec against nginx and a naive baseline (design §4).

Run ``python bench/run.py`` (or ``--quick``); results go into BENCHMARKS.md.
"""
