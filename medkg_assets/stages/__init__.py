"""Stage functions: `(StageContext, inputs) -> Report`, runnable without Dagster.

One module per stage. The asset wrappers (assets/), the CLI and the benchmarks call these; each
stage reads and writes its artefacts through the context's layout and returns a typed report.
"""
