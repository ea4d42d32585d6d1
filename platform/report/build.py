"""`zsar report`: MLflow runs -> tables (Markdown + CSV), PNG plots and one HTML page in `out`.

Layout of `out`:
  index.html, report.md              the page and the same tables in Markdown
  tables/<table>.md|.csv|_cells.csv  each table; `_cells.csv` names the run ids behind every cell
  plots/<table>.png                  a bar chart per table
  runs/<run id>/                     for the best run of each table (`best_runs`), or each --run:
                                     per-class accuracy and confusion matrix of each label set
                                     (from its `eval/per_class` and `eval/confusion` artifacts), a
                                     t-SNE of video against class text embeddings (computed from its
                                     `checkpoint` artifact), and the videos it could not decode
                                     (`eval/failures.csv`)
  sweeps/<run id>/                   a sweep's Optuna plots: the PNG and HTML files a top-level
                                     run logged under the artifact folder `sweep/plots/`
  published/                         the shipped reference numbers (SC-CLIP Tables 2 and 3); the
                                     rows that match one of our tables are shown in that table only

A table is made for each protocol that has runs (`zsar.report.tables`).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsar.log import log
from zsar.report import html, plots
from zsar.report.collect import RunRecord, collect_runs
from zsar.report.published import SOURCE_FILE, add_published, load_published, published_table
from zsar.report.tables import FAILURES_NOTE, build_tables, to_markdown, write_csv

SWEEP_ARTIFACTS = "sweep/plots"


@dataclass
class RunSection:
    run_id: str
    name: str
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    notes: list[str] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)  # its eval/failures.csv: path, error


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _has_artifact(client, run_id: str, path: str) -> bool:
    try:
        return bool(client.list_artifacts(run_id, path))
    except Exception as e:  # noqa: BLE001 - a report goes on without this run's artifact, and says so
        log(f"warning: run {run_id}: cannot list artifacts {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return False


def _download(client, run_id: str, path: str, dst: Path) -> Path | None:
    if not _has_artifact(client, run_id, path):
        return None
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst)))


def _download_file(client, run_id: str, folder: str, name: str, dst: Path) -> Path | None:
    try:
        listed = [a.path for a in client.list_artifacts(run_id, folder)]
    except Exception as e:  # noqa: BLE001 - a report goes on without this run's artifact, and says so
        log(f"warning: run {run_id}: cannot list artifacts {folder}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return None
    if f"{folder}/{name}" not in listed:
        return None
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, f"{folder}/{name}", str(dst)))


def _read_per_class(path: Path) -> tuple[list[str], list[float]]:
    rows = list(csv.DictReader(path.open()))
    return [r["class"] for r in rows], [float(r["top1"]) if r["top1"] else float("nan") for r in rows]


def _read_confusion(path: Path) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(path.open()))
    return rows[0][1:], np.asarray([[int(x) for x in r[1:]] for r in rows[1:]])


def run_section(uri: str, run_id: str, out: Path, tsne_videos: int = 64) -> RunSection:
    from zsar.errors import ZsarError

    client = _client(uri)
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise ZsarError(f"--run: no MLflow run '{run_id}' in {uri} ({str(e).splitlines()[0]})") from None
    section = RunSection(run_id, run.info.run_name or run_id)
    folder = out / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "artifacts"
    per_class = _download(client, run_id, "eval/per_class", tmp)
    for csv_path in sorted(per_class.glob("*.csv")) if per_class else []:
        classes, acc = _read_per_class(csv_path)
        png = plots.per_class_bars(classes, acc, f"per-class top-1: {csv_path.stem} ({section.name})", folder / f"per_class_{csv_path.stem}.png")
        section.images.append((png.relative_to(out).as_posix(), f"per-class accuracy, label set {csv_path.stem}"))
    if not per_class:
        section.notes.append("no eval/per_class artifact: per-class accuracy not shown")
    confusion = _download(client, run_id, "eval/confusion", tmp)
    for csv_path in sorted(confusion.glob("*.csv")) if confusion else []:
        classes, counts = _read_confusion(csv_path)
        png = plots.confusion_heatmap(classes, counts, f"confusion: {csv_path.stem} ({section.name})", folder / f"confusion_{csv_path.stem}.png")
        section.images.append((png.relative_to(out).as_posix(), f"confusion matrix (row-normalised), label set {csv_path.stem}"))
    if not confusion:
        section.notes.append("no eval/confusion artifact (runs logged before confusion matrices were recorded): confusion matrix not shown")
    failures = _download_file(client, run_id, "eval", "failures.csv", tmp)
    if failures:
        section.failures = list(csv.DictReader(failures.open()))
        section.notes.append(f"{len(section.failures)} videos could not be decoded and were left out")
    if tsne_videos > 0:
        try:
            section.images.append(_tsne(client, run_id, section.name, folder, out, tsne_videos))
        except ZsarError as e:
            section.notes.append(f"t-SNE not drawn: {e}")
    shutil.rmtree(tmp, ignore_errors=True)
    return section


def _tsne(client, run_id: str, name: str, folder: Path, out: Path, max_videos: int) -> tuple[str, str]:
    from zsar.errors import ZsarError
    from zsar.report.embed import checkpoint_embeddings, tsne_2d

    ckpt_dir = _download(client, run_id, "checkpoint", folder / "artifacts")
    if ckpt_dir is None:
        raise ZsarError("the run has no checkpoint artifact")
    emb = checkpoint_embeddings(str(ckpt_dir), max_videos=max_videos)
    points = tsne_2d(emb)
    np.savez(folder / f"tsne_{emb.part}.npz", points=points, labels=emb.labels, n_videos=len(emb.videos), classes=np.asarray(emb.class_names))
    png = plots.tsne_scatter(points, emb.labels, len(emb.videos), emb.class_names,
                             f"t-SNE: {len(emb.videos)} videos of '{emb.part}' and its class text embeddings ({name})", folder / f"tsne_{emb.part}.png")
    return png.relative_to(out).as_posix(), f"t-SNE of video embeddings (small marks) and class text embeddings (large marks), label set {emb.part}"


def best_runs(tables) -> list[tuple[str, str]]:
    """(run id, table key) of each table's best run: in the row with the highest mean over its
    one-run primary cells (HM per split, top-1 per split, ...), the run of the best such cell."""
    best = []
    for table in tables:
        scored = []
        for row in table.rows:
            cells = [row.cells[i] for i in table.primary if not row.published and not row.cells[i].missing and row.cells[i].runs]
            if cells:
                scored.append((float(np.mean([c.value for c in cells])), max(cells, key=lambda c: c.value).runs[0]))
        if scored:
            best.append((max(scored)[1], table.key))
    return best


def sweep_files(uri: str, runs: list[RunRecord], out: Path) -> list[tuple[str, list[Path]]]:
    client = _client(uri)
    found = []
    for run in runs:
        if "mlflow.parentRunId" in run.tags:
            continue
        local = _download(client, run.run_id, SWEEP_ARTIFACTS, out / "sweeps" / run.run_id)
        if local is None:
            continue
        files = sorted(p for p in local.rglob("*") if p.suffix.lower() in (".png", ".html"))
        if files:
            found.append((run.name, files))
    return found


def _table_section(table, out: Path) -> tuple[str, str, str]:
    """(heading, HTML, Markdown) of one table, its files and its bar chart."""
    text = to_markdown(table)
    (out / "tables" / f"{table.key}.md").write_text(text)
    write_csv(table, out / "tables")
    png = plots.table_bars(table, out / "plots" / f"{table.key}.png")
    inner = html.table_html(table)
    inner += "".join(f'<p class="note">{html.escape(n)}</p>' for n in [FAILURES_NOTE, *table.notes])
    inner += "<p>" + " · ".join(html.link(f"tables/{table.key}{s}", f"{table.key}{s}") for s in (".md", ".csv", "_cells.csv")) + "</p>"
    if png is not None:
        inner += html.img(png.relative_to(out).as_posix(), f"bar chart: {table.title}")
    return table.title, inner, text


def _run_sections(uri: str, chosen: list[tuple[str, list[str]]], out: Path, tsne_videos: int) -> list[tuple[str, str, str]]:
    """(heading, HTML, Markdown) of each chosen run: (run id, why it was chosen)."""
    found = []
    for run_id, why in chosen:
        sec = run_section(uri, run_id, out, tsne_videos)
        heading = f"Run {sec.name} ({run_id})" + (f": best of {', '.join(why)}" if why else "")
        inner = "".join(f'<p class="note">{html.escape(n)}</p>' for n in sec.notes)
        if sec.failures:
            inner += html.failures_html(sec.failures)
        inner += "".join(f"<h3>{html.escape(cap)}</h3>" + html.img(src, cap) for src, cap in sec.images)
        md = (f"## {heading}\n\n" + "".join(f"- {n}\n" for n in sec.notes)
              + "".join(f"- could not decode {f['path']}: {f['error']}\n" for f in sec.failures)
              + "".join(f"![{cap}]({src})\n\n" for src, cap in sec.images))
        found.append((heading, inner, md))
    return found


def _choose_runs(tables, chosen_runs: list[str] | None) -> list[tuple[str, list[str]]]:
    if chosen_runs:
        return [(r, []) for r in chosen_runs]
    why: dict[str, list[str]] = {}
    for run_id, key in best_runs(tables):
        why.setdefault(run_id, []).append(key)
    return list(why.items())


def _sweeps_section(uri: str, runs: list[RunRecord], out: Path) -> tuple[str, str]:
    sweeps = sweep_files(uri, runs, out)
    inner = f'<p class="note">Optuna plots are picked up from the artifact folder <code>{SWEEP_ARTIFACTS}/</code> of top-level runs.</p>'
    for name, files in sweeps:
        inner += f"<h3>{html.escape(name)}</h3>"
        for f in files:
            rel = f.relative_to(out).as_posix()
            inner += html.img(rel, f.stem) if f.suffix.lower() == ".png" else f"<p>{html.link(rel, f.name)} (interactive Optuna plot)</p>"
    if not sweeps:
        inner += '<p class="note">no sweep logged Optuna plots</p>'
    return "Sweeps", inner


def _published_files(out: Path) -> tuple[str, str]:
    """The shipped reference numbers as files beside the report; the rows that match one of our
    tables are in that table already."""
    from importlib import resources

    (out / "published" / SOURCE_FILE).write_bytes(resources.files("zsar.resources").joinpath("published", SOURCE_FILE).read_bytes())
    (out / "published" / "published.md").write_text("# Published numbers (not our runs)\n\n" + published_table(load_published()))
    return ("Published reference numbers (SC-CLIP, Pattern Recognition 2025; not our runs)",
            '<p class="note">Typed from the paper\'s Tables 2 and 3; the rows that match a table above are shown in it, marked '
            "[published]. All of them: " + html.link(f"published/{SOURCE_FILE}", SOURCE_FILE) + " · "
            + html.link("published/published.md", "published.md") + "</p>")


def build_report(out: str | Path, *, experiment: str | None = None, run_filter: str | None = None,
                 uri: str | None = None, chosen_runs: list[str] | None = None, tsne_videos: int = 64) -> Path:
    from zsar.track.mlflow_log import resolve_uri

    uri = resolve_uri(uri)
    out = Path(out)
    for sub in ("tables", "plots", "published"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    runs = collect_runs(uri, experiment, run_filter)
    tables = build_tables(runs)
    add_published(tables)

    where = (f"MLflow store `{uri}`, experiment `{experiment or 'all'}`" + (f", runs `{run_filter}`" if run_filter else "")
             + f": {len(runs)} finished runs, {len(tables)} tables.")
    md = [f"# zsar report\n\n{where}\n"]
    sections = []
    for title, inner, text in (_table_section(t, out) for t in tables):
        sections.append((title, inner))
        md.append(text)
    if not tables:
        sections.append(("Tables", '<p class="note">no finished run logged results (top-1, HM, ZSL, ...)</p>'))
    for heading, inner, text in _run_sections(uri, _choose_runs(tables, chosen_runs), out, tsne_videos):
        sections.append((heading, inner))
        md.append(text)
    sections.append(_sweeps_section(uri, runs, out))
    sections.append(_published_files(out))

    (out / "report.md").write_text("\n".join(md))
    sections.insert(0, ("Files", "<p>" + html.link("report.md", "report.md (all tables in Markdown)") + "</p>"
                        + f'<p class="note">{html.escape(where)} Hover a cell for its run ids.</p>'))
    index = out / "index.html"
    index.write_text(html.page("zsar report", sections))
    return index
