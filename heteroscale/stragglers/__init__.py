"""Straggler what-if analysis for LLM training jobs (OSDI'25, "Understanding Stragglers in Large
Model Training Using What-if Analysis").

Core (pure): :mod:`.trace` (schema, validation), :mod:`.op_tensor` (dense layout),
:mod:`.dependency` (graph), :mod:`.replay` (T, T_ideal, S), :mod:`.attribution`, :mod:`.median`
(exact median over chunks), :mod:`.root_cause`, :mod:`.chunked` (how a pass runs) and
:mod:`.analysis` (the passes over chunks of steps). Shell (I/O): :mod:`.trace_io`,
:mod:`.parquet_trace`, :mod:`.profiler_import`, :mod:`.streaming` (worker processes, temporary
files), :mod:`.report`, :mod:`.heatmap`, :mod:`.exporter`.
"""
