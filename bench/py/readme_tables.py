"""Prints README.md's tables for one data set from the benchmark's results file.

    python3 bench/py/readme_tables.py bench/results/glove-100k.md
    python3 bench/py/readme_tables.py bench/results/synth384-100k.md

Reads the Markdown that bench/run.mjs writes (its build table, its recall · QPS table by ef and
by nprobes) and prints them as the README shows them: fewer columns, the README's engine names,
recall to 3 decimals (`--no-quantized`: without the rows of 'int8' and 'binary'). The goal
tables are written by hand from the results file's "Goals" sections.
"""

import re
import sys

# results label -> README label, in the README's order
RECALL_ROWS = [
    ("hannoy-node (1 awaited)", "hannoy (Node), 1 awaited"),
    ("hannoy-node (16 in flight)", "hannoy (Node), 16 in flight"),
    ("hannoy-node (searchBatch)", "hannoy (Node), `searchBatch`"),
    ("hannoy-node (searchBatch, 1 thread)", "hannoy (Node), `searchBatch` on 1 thread"),
    ("hannoy-node-int8 (1 awaited)", "hannoy (Node), `'int8'`, 1 awaited"),
    ("hannoy-node-binary (1 awaited)", "hannoy (Node), `'binary'`, 1 awaited"),
    ("hnswlib-py (1-thread batch)", "hnswlib (C++), 1-thread batch"),
    ("hnswlib-py (1 per call)", "hnswlib (C++), 1 query per call"),
    ("hnswlib-node", "hnswlib-node (synchronous)"),
    ("usearch", "usearch"),
    ("usearch (batch)", "usearch, batch"),
    ("lancedb-hnsw-sq (1 awaited)", "LanceDB HNSW_SQ, 1 awaited"),
    ("lancedb-hnsw-sq (16 in flight)", "LanceDB HNSW_SQ, 16 in flight"),
    ("hannoy-py", "hannoy (Python)"),
]

BUILD_ROWS = [
    ("hannoy-node", "**hannoy (Node)**"),
    ("hannoy-node-binary", "hannoy (Node), `'binary'`"),
    ("hnswlib-py", "hnswlib (C++, PyPI)"),
    ("hnswlib", "hnswlib-node"),
    ("usearch", "usearch"),
    ("lancedb-hnsw-sq", "LanceDB HNSW_SQ"),
    ("lancedb-ivf-pq", "LanceDB IVF_PQ"),
]


def tables(text):
    """Every Markdown table of `text`, as (header cells, rows of cells)."""
    found, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = (cells, [])
                found.append(current)
            elif not set("".join(cells)) <= set("-: "):
                current[1].append(cells)
        else:
            current = None
    return found


def find(found, first_header):
    for header, rows in found:
        if header[0] == first_header[0] and header[1].startswith(first_header[1]):
            return header, {row[0]: row for row in rows}
    return None, {}


def cell3(cell):
    """'0.7376 · 27,960' -> '0.738 · 27,960'."""
    m = re.match(r"([0-9.]+) · (.*)", cell)
    return f"{float(m.group(1)):.3f} · {m.group(2)}" if m else cell


def main(path, quantized=True):
    text = open(path, encoding="utf8").read()
    found = tables(text)

    header, build = find(found, ["engine", "version"])
    if header:
        col = {name: i for i, name in enumerate(header)}
        print("| engine | build | disk per vector | private memory searching | open + first query |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for key, label in BUILD_ROWS:
            row = build.get(key) if quantized or "-binary" not in key else None
            if not row:
                continue
            seconds = float(row[col["build s"]].split()[0])
            threads = row[col["threads (CPU×)"]].split()[0]
            per_vector = round(float(row[col["bytes/vector"]]))
            over = re.search(r"\(\+([0-9.]+)\)", row[col["private MiB (over idle)"]])
            private = f"+{round(float(over.group(1)))} MiB" if over else "—"
            first = round(float(row[col["open + first query ms"]]))
            thread_word = "thread" if threads == "1" else "threads"
            print(f"| {label} | {seconds:.1f} s ({threads} {thread_word}) | {per_vector:,} B | {private} | {first} ms |")
        print()

    header, recall = find(found, ["engine / mode", "ef "])
    if header:
        print("| engine / mode | " + " | ".join(header[1:]) + " |")
        print("| --- | " + " | ".join("---:" for _ in header[1:]) + " |")
        for key, label in RECALL_ROWS:
            row = recall.get(key) if quantized or "-int8" not in key and "-binary" not in key else None
            if row:
                print(f"| {label} | " + " | ".join(cell3(c) for c in row[1:]) + " |")
        print()

    header, ivf = find(found, ["engine / mode", "nprobes "])
    if header:
        one = ivf.get("lancedb-ivf-pq (1 awaited)")
        many = ivf.get("lancedb-ivf-pq (16 in flight)")
        probes = ", ".join(h.split()[1] for h in header[1:])
        if one:
            print(f"LanceDB IVF_PQ (nprobes {probes}), 1 awaited: " + ", ".join(cell3(c) for c in one[1:]), end="")
        if many:
            qps = [c.split(" · ")[1] for c in many[1:]]
            print(f"; 16 in flight: {qps[0]} to {qps[-1]} QPS.")
        else:
            print(".")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--no-quantized"]
    if len(args) != 1:
        sys.exit(__doc__)
    main(args[0], quantized="--no-quantized" not in sys.argv)
