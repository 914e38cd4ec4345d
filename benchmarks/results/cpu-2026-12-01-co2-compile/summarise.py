"""Medians and ranges per tree of a run file (co2_compile.py's JSON lines; default: run.txt here)."""

import json
import os
import statistics
import sys
from collections import defaultdict

KEYS = ("compile_s", "trace_s", "lower_s", "xla_s")
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "run.txt")
rows = defaultdict(list)
with open(path) as lines:
    for number, line in enumerate(lines, 1):
        if not line.lstrip().startswith("{"):
            continue  # comments and the main job's own lines
        try:
            row = json.loads(line)
            rows[row["tree"]].append({key: float(row[key]) for key in KEYS})
        except (ValueError, KeyError, TypeError) as error:
            sys.exit(f"{path}:{number}: not a co2_compile.py result ({error!r})")
if not rows:
    sys.exit(f"{path}: no co2_compile.py results")
for tree, rs in rows.items():
    parts = []
    for key in KEYS:
        values = [r[key] for r in rs]
        parts.append(
            f"{key} median {statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"
        )
    print(f"{tree}: n = {len(rs)}; " + "; ".join(parts))
