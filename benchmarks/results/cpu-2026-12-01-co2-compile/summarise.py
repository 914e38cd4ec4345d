"""Medians and ranges per tree of run.txt (co2_compile.py's JSON lines)."""

import json
import statistics
import sys
from collections import defaultdict

rows = defaultdict(list)
for line in open(sys.argv[1] if len(sys.argv) > 1 else "run.txt"):
    if line.startswith("{"):
        row = json.loads(line)
        rows[row["tree"]].append(row)
for tree, rs in rows.items():
    parts = []
    for key in ("compile_s", "trace_s", "lower_s", "xla_s"):
        values = [r[key] for r in rs]
        parts.append(
            f"{key} median {statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"
        )
    print(f"{tree}: n = {len(rs)}; " + "; ".join(parts))
