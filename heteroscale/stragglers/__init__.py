"""Straggler what-if analysis for LLM training jobs (OSDI'25, "Understanding Stragglers in Large
Model Training Using What-if Analysis").

Core (pure): :mod:`.trace` (schema, validation), :mod:`.op_tensor` (dense layout),
:mod:`.dependency` (graph), :mod:`.replay` (T, T_ideal, S), :mod:`.attribution`,
:mod:`.root_cause`, :mod:`.analysis`. Shell (I/O): :mod:`.trace_io`, :mod:`.profiler_import`,
:mod:`.report`, :mod:`.heatmap`, :mod:`.exporter`.
"""
