"""The engine's pricing + windows rules re-implemented the way other teams would: DuckDB SQL
and pandas (vectorised merges, and a row-wise ``apply`` variant), for the benchmark in
``benchmarks/bench_alternatives.py``. Not part of the library.

Every implementation reads the same inputs (activity, cohort, the 2017-18 reference costs and
trim points written to Parquet, and the code sets in ``rules.json``) and returns the same
totals (``Totals``) so the benchmark can check that all of them agree with the engine.
"""
