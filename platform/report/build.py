"""`zsar report`: MLflow runs -> tables (Markdown + CSV), PNG plots and one HTML page in `out`.

Layout of `out`:
  index.html, report.md              the page and the same tables in Markdown
  tables/<table>.md|.csv|_cells.csv  each table; `_cells.csv` names the run ids behind every cell
  plots/<table>.png                  a bar chart per table
  runs/<run id>/                     for each chosen run: per-class accuracy and confusion matrix
                                     of each label set (from its `eval/per_class` and
                                     `eval/confusion` artifacts) and a t-SNE of video against class
                                     text embeddings (computed from its `checkpoint` artifact)
  sweeps/<run id>/                   a sweep's Optuna plots: the PNG and HTML files a top-level
                                     run logged under the artifact folder `sweep/plots/`
  published/                         the shipped reference numbers (SC-CLIP Tables 2 and 3)
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zsar.report import html, plots
from zsar.report.collect import RunRecord, collect_runs
from zsar.report.published import SOURCE_FILE, add_published, load_published, published_table
from zsar.report.tables import build_tables, to_markdown, write_csv

SWEEP_ARTIFACTS = "sweep/plots"


@dataclass
class RunSection:
    run_id: str
    name: str
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    notes: list[str] = field(default_factory=list)


def _client(uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _has_artifact(client, run_id: str, path: str) -> bool:
    try:
        return bool(client.list_artifacts(run_id, path))
    except Exception:
        return False


def _download(client, run_id: str, path: str, dst: Path) -> Path | None:
    if not _has_artifact(client, run_id, path):
        return None
    dst.mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst)))


def _read_per_class(path: Path) -> tuple[list[str], list[float]]:
    rows = list(csv.DictReader(path.open()))
    return [r["class"] for r in rows], [float(r["top1"]) if r["top1"] else float("nan") for r in rows]


def _read_confusion(path: Path) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(path.open()))
    return rows[0][1:], np.asarray([[int(x) for x in r[1:]] for r in rows[1:]])


def run_section(uri: str, run_id: str, out: Path, tsne_videos: int = 64) -> RunSection:
    from zsar.errors import ZsarError

    client = _client(uri)
    try:
        run = client.get_run(run_id)
    except Exception:
        raise ZsarError(f"--run: no MLflow run '{run_id}' in {uri}") from None
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
    return png.relative_to(out).as_posix(), f"t-SNE of video embeddings (dots) and class text embeddings (stars), label set {emb.part}"


def default_run(uri: str, runs: list[RunRecord]) -> str | None:
    """The newest run that logged per-class evaluation tables."""
    client = _client(uri)
    for run in sorted(runs, key=lambda r: -r.start_time)[:50]:
        if _has_artifact(client, run.run_id, "eval/per_class"):
            return run.run_id
    return None


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

    sections = []
    md = [f"# zsar report\n\nMLflow store `{uri}`, experiment `{experiment or 'all'}`"
          + (f", runs `{run_filter}`" if run_filter else "") + f": {len(runs)} finished runs.\n"]
    for table in tables:
        text = to_markdown(table)
        (out / "tables" / f"{table.key}.md").write_text(text)
        write_csv(table, out / "tables")
        md.append(text)
        png = plots.table_bars(table, out / "plots" / f"{table.key}.png")
        inner = html.table_html(table)
        inner += "".join(f'<p class="note">{n}</p>' for n in table.notes)
        inner += "<p>" + " · ".join(html.link(f"tables/{table.key}{s}", f"{table.key}{s}") for s in (".md", ".csv", "_cells.csv")) + "</p>"
        if png is not None:
            inner += html.img(png.relative_to(out).as_posix(), f"bar chart: {table.title}")
        sections.append((table.title, inner))

    chosen = list(chosen_runs or [])
    if not chosen:
        newest = default_run(uri, runs)
        chosen = [newest] if newest else []
    for run_id in chosen:
        sec = run_section(uri, run_id, out, tsne_videos)
        inner = "".join(f'<p class="note">{n}</p>' for n in sec.notes)
        inner += "".join(f"<h3>{cap}</h3>" + html.img(src, cap) for src, cap in sec.images)
        sections.append((f"Run {sec.name} ({run_id})", inner))
        md.append(f"## Run {sec.name} ({run_id})\n\n" + "".join(f"- {n}\n" for n in sec.notes)
                  + "".join(f"![{cap}]({src})\n\n" for src, cap in sec.images))
    if not chosen:
        sections.append(("Per-run plots", '<p class="note">no run logged per-class evaluation tables</p>'))

    sweeps = sweep_files(uri, runs, out)
    inner = f'<p class="note">Optuna plots are picked up from the artifact folder <code>{SWEEP_ARTIFACTS}/</code> of top-level runs.</p>'
    for name, files in sweeps:
        inner += f"<h3>{name}</h3>"
        for f in files:
            rel = f.relative_to(out).as_posix()
            inner += html.img(rel, f.stem) if f.suffix.lower() == ".png" else f"<p>{html.link(rel, f.name)} (interactive Optuna plot)</p>"
    if not sweeps:
        inner += '<p class="note">no sweep logged Optuna plots</p>'
    sections.append(("Sweeps", inner))

    from importlib import resources

    (out / "published" / SOURCE_FILE).write_bytes(resources.files("zsar.resources").joinpath("published", SOURCE_FILE).read_bytes())
    ref = published_table(load_published())
    (out / "published" / "published.md").write_text("# Published numbers (not our runs)\n\n" + ref)
    sections.append(("Published reference numbers (SC-CLIP, Pattern Recognition 2025; not our runs)",
                     '<p class="note">Typed from the paper\'s Tables 2 and 3. '
                     + html.link(f"published/{SOURCE_FILE}", SOURCE_FILE) + " · " + html.link("published/published.md", "published.md") + "</p>"))
    md.append("## Published reference numbers (not our runs)\n\n" + ref)

    (out / "report.md").write_text("\n".join(md))
    sections.insert(0, ("Files", "<p>" + html.link("report.md", "report.md (all tables in Markdown)") + "</p>"
                        + f'<p class="note">{len(runs)} finished runs from <code>{html.escape(uri)}</code>; hover a cell for its run ids.</p>'))
    index = out / "index.html"
    index.write_text(html.page("zsar report", sections))
    return index
