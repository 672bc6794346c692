"""The keras.applications matrix as a Markdown table, and its place in the docs.

``python -m export matrix --applications --docs docs/export.md`` runs (or
resumes) :mod:`export.apps_matrix` and rewrites the table between the
:data:`DOCS_BEGIN` and :data:`DOCS_END` lines of the file.
"""
from __future__ import annotations

from pathlib import Path

from export import apps_matrix


def _cell(cell: dict) -> str:
    if cell["status"] == "validated":
        return (f"validated {cell['max_abs_diff']:.0e}, {cell['seconds']:.1f} s, "
                f"{cell['size_bytes'] / 2**20:.1f} MiB")
    return f"{cell['status']}: " + cell["reason"].replace("|", "/")[:300]


def applications_markdown(rows: dict, builders=()) -> str:
    """The docs table of :func:`export.apps_matrix.run_applications_matrix` rows: per
    column "validated max|diff|, conversion seconds, size" or "refused: reason";
    ``builders`` without a row are listed as not run."""
    columns = [c for c, _, _ in apps_matrix.COLUMNS]
    lines = ["| builder | input | params | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for name in sorted(set(rows) | set(builders)):
        if name not in rows:
            lines.append(f"| `{name}` | not run yet | |" + " |" * len(columns))
            continue
        row = rows[name]
        size = f"{row['input_size']}x{row['input_size']}" if row["input_size"] else "?"
        if row.get("size_note"):
            size += f" ({row['size_note']})"
        params = f"{row['params'] / 1e6:.1f}M" if row["params"] else "?"
        cells = [_cell(row["formats"][c]) if c in row["formats"] else "" for c in columns]
        lines.append(f"| `{name}` | {size} | {params} | " + " | ".join(cells) + " |")
    ours = [r for r in rows.values() if all(r["formats"].get(c, {}).get("status") == "validated"
                                            for c in apps_matrix.OURS)]
    baseline = [r for r in rows.values()
                if r["formats"].get("keras_onnx", {}).get("status") == "validated"]
    missing = set(builders) - set(rows)
    lines.append("")
    lines.append(f"{len(ours)} of {len(rows)} builders run validated in every format of ours, "
                 f"{len(baseline)} by Keras' own ONNX export"
                 + (f"; {len(missing)} not run yet." if missing else "."))
    return "\n".join(lines) + "\n"


DOCS_BEGIN, DOCS_END = "<!-- apps-matrix: begin -->", "<!-- apps-matrix: end -->"


def _docs_section(path) -> tuple[str, int, int]:
    """The Markdown file's text and where its table goes, or ExportError."""
    from export.errors import ExportError
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"Cannot read --docs {path}: {exc.strerror}.") from None
    begin, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if begin < 0 or end < begin:
        raise ExportError(f"--docs {path} has no '{DOCS_BEGIN}' ... '{DOCS_END}' lines "
                          "around the table to regenerate; add them where the table goes.")
    return text, begin + len(DOCS_BEGIN), end


def applications_table(pattern: str = "*", work_dir=apps_matrix.WORK_DIR, docs=None,
                       log=None, run=True) -> str:
    """Run (or resume) the matrix and return its Markdown table; ``run=False``:
    only the rows cached in ``work_dir``. With ``docs``, a Markdown file, also
    replace the table between its :data:`DOCS_BEGIN` and :data:`DOCS_END` lines
    (checked before anything runs, written atomically)."""
    from utils.io import atomic_write_text
    if docs is not None:
        _docs_section(docs)
    builders = apps_matrix.application_builders(pattern)
    rows = (apps_matrix.run_applications_matrix(pattern, work_dir, log=log) if run
            else apps_matrix.cached_rows(builders, work_dir))
    table = applications_markdown(rows, builders)
    if docs is not None:
        text, begin, end = _docs_section(docs)
        atomic_write_text(docs, text[:begin] + "\n" + table + text[end:])
    return table
