"""Large straggler traces for the benchmarks, generated on demand from the bundled SE trace.

SE (DP 32 x PP 2 x CP 2, 43 steps, 107,328 ops) with its DP ranks copied ``copies`` times: DP rank
``d`` of copy ``c`` becomes ``c * 32 + d``. Copies keep every collective consistent and leave S,
per-step S and the per-stage attribution unchanged. Global ranks are renumbered in Megatron order
(``stage * dp * cp + dp_rank * cp``) as in SE itself. The file is written one row group per step, so
generating holds one step in memory and readers can stream it step by step. Never committed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tests.stragglers.conftest import DATA

SOURCE = "SE"


def write_replicated_trace(copies: int, folder: Path) -> tuple[Path, Path]:
    """Write ``trace-SEx<copies>.parquet`` and its metadata YAML into ``folder``; return both paths."""
    meta = yaml.safe_load((DATA / f"meta-{SOURCE}.yaml").read_text())
    dp, cp, tp = meta["dp_size"], meta["dsp_size"], meta["tp_size"]
    big_dp = dp * copies
    name = f"{SOURCE}x{copies}"
    meta_path = folder / f"meta-{name}.yaml"
    meta_path.write_text(
        yaml.safe_dump({**meta, "trial_name": name, "dp_size": big_dp, "world_size": meta["world_size"] * copies})
    )

    source = pq.read_table(DATA / f"trace-{SOURCE}.parquet")
    schema = source.schema.remove_metadata()
    # DP ranks and global ranks outgrow the source's int8/int16 columns.
    for column, dtype in (("dp_rank", pa.int16()), ("rank", pa.int32())):
        schema = schema.set(schema.get_field_index(column), pa.field(column, dtype))
    steps = source.column("step").to_numpy()
    trace_path = folder / f"trace-{name}.parquet"
    with pq.ParquetWriter(trace_path, schema) as writer:
        for step in np.unique(steps):
            part = source.filter(pa.array(steps == step))
            copy = np.repeat(np.arange(copies), part.num_rows)
            dp_rank = np.tile(part.column("dp_rank").to_numpy().astype(np.int32), copies) + copy * dp
            stage = np.tile(part.column("stage").to_numpy().astype(np.int32), copies)
            columns = {}
            for field in schema:
                if field.name == "dp_rank":
                    columns[field.name] = pa.array(dp_rank, type=field.type)
                elif field.name == "rank":
                    columns[field.name] = pa.array(stage * big_dp * cp * tp + dp_rank * cp * tp, type=field.type)
                elif field.name == "optype":
                    optype = part.column("optype").combine_chunks()
                    indices = np.tile(optype.indices.to_numpy(), copies)
                    columns[field.name] = pa.DictionaryArray.from_arrays(indices, optype.dictionary)
                else:
                    columns[field.name] = pa.array(np.tile(part.column(field.name).to_numpy(), copies), type=field.type)
            writer.write_table(pa.table(columns, schema=schema))
    return trace_path, meta_path
