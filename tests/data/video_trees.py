"""Tiny dataset trees in each dataset's real layout, named after entries of the shipped lists.

Files are empty placeholders unless `clip` is given (then a real video, hard-linked when the
filesystem allows): adapters and protocols never decode, `zsar data check` does.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from functools import cache, lru_cache
from pathlib import Path

from zsar.data.classnames import class_key
from zsar.resources import resource

VIDEO_LISTS = resource("protocols", "video")
SPLITS = VIDEO_LISTS / "datasets_splits"


@lru_cache(maxsize=None)
def _official(dataset: str) -> tuple[str, ...]:
    return tuple(resource("labels", f"{dataset}.txt").read_text().splitlines())


def official(dataset: str) -> list[str]:
    return list(_official(dataset))


@lru_cache(maxsize=None)
def _folders(dataset: str) -> dict[str, str]:
    return {class_key(n): n for n in _official(dataset)}


def folder_of(dataset: str, name: str) -> str:
    """The dataset's own folder spelling of a class given in any spelling."""
    return _folders(dataset)[class_key(name)]


def put(path: Path, clip: Path | None = None) -> Path:
    if not os.path.isdir(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
    if clip is None:
        path.write_bytes(b"")
    else:
        try:
            os.link(clip, path)
        except OSError:
            shutil.copy(clip, path)
    return path


def list_names(rel: str, every: int = 1, limit: int | None = None) -> list[str]:
    lines = (SPLITS / rel).read_text().splitlines()[::every]
    return [line.split()[0] for line in lines[:limit]]


@cache
def ucf_class(filename: str) -> str:
    """UCF-101 folder of a video, from the class the test knows it has (v_<Class>_gXX_cYY)."""
    return folder_of("ucf101", filename.split("_")[1])


def make_ucf(root: Path, names: list[str], train: list[str] = (), test: list[str] = (), clip=None) -> Path:
    """UCF-101/<Class>/<name> for each name; ucfTrainTestlist with classInd and the lists of splits
    1-3 (the same three times)."""
    for name in names:
        put(root / "UCF-101" / ucf_class(name) / name, clip)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    classes = official("ucf101")
    index = {c: i + 1 for i, c in enumerate(classes)}
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    for split in (1, 2, 3):
        (lists / f"trainlist0{split}.txt").write_text("".join(f"{ucf_class(n)}/{n} {index[ucf_class(n)]}\n" for n in train))
        (lists / f"testlist0{split}.txt").write_text("".join(f"{ucf_class(n)}/{n}\n" for n in test))
    return root


def hmdb_class(filename: str) -> str:
    """The HMDB-51 class embedded in a video's file name (`..._<class>_<tags>_<n>.avi`)."""
    return max((c for c in _official("hmdb51") if f"_{c}_" in filename), key=len)


def make_hmdb(root: Path, names: list[str], tags: dict[str, int] | None = None, clip=None) -> Path:
    """<class>/<name> under hmdb51_org/; split-1 files for every class with the given tags."""
    for name in names:
        put(root / "hmdb51_org" / hmdb_class(name) / name, clip)
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True, exist_ok=True)
    by_class: dict[str, list[str]] = {c: [] for c in official("hmdb51")}
    for name, tag in (tags or {}).items():
        by_class[hmdb_class(name)].append(f"{name} {tag} ")
    for cls, lines in by_class.items():
        (splits / f"{cls}_test_split1.txt").write_text("".join(line + "\n" for line in lines))
    return root


def make_kinetics(root: Path, rows: list[tuple[str, str, str]], layout: str = "split", split_words=None, clip=None) -> Path:
    """rows: (class, video file name `<id>_<start>_<end>.mp4`, split). Writes annotations/<split>.csv
    (its split column spelt as `split_words` says, e.g. {"val": "validate"}) and the videos under
    <split>/ (layout "split") or <split>/<class>/ (layout "class")."""
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    by_split: dict[str, list] = {}
    for cls, name, split in rows:
        by_split.setdefault(split, []).append((cls, name))
        folder = root / split if layout == "split" else root / split / cls
        put(folder / name, clip)
    for split, items in by_split.items():
        with (ann / f"{split}.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["label", "youtube_id", "time_start", "time_end", "split"])
            for cls, name in items:
                yid, start, end = name[: -len(".mp4")].rsplit("_", 2)
                w.writerow([cls, yid, int(start), int(end), (split_words or {}).get(split, split)])
    return root


def label_csv(name: str) -> list[str]:
    with (VIDEO_LISTS / "labels" / name).open(newline="") as f:
        return [r["name"] for r in csv.DictReader(f)]


def make_ssv2(root: Path, videos: dict[str, tuple[str, str]], clip=None) -> Path:
    """videos: id -> (template with [something] brackets, "train" | "validation")."""
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "labels.json").write_text(json.dumps({n: str(i) for i, n in enumerate(official("ssv2"))}))
    for split in ("train", "validation"):
        rows = [{"id": vid, "label": t.lower(), "template": t, "placeholders": []} for vid, (t, s) in videos.items() if s == split]
        (labels / f"{split}.json").write_text(json.dumps(rows))
    for vid in videos:
        put(root / "20bn-something-something-v2" / f"{vid}.webm", clip)
    return root


# ---------------------------------------------------------------- ActivityNet Captions

# A caption video: three segments of 8 frames (one second at 8 fps), each a demo class's motion.
SEGMENT_FRAMES, CAPTION_FPS = 8, 8


def caption_video(path: Path, classes: list[str], seed: int) -> list[tuple[float, float, str]]:
    """A demo-generator video (zsar.data.synth) whose consecutive one-second segments show the
    shape of each of `classes` in turn; its segments as (start s, end s, caption)."""
    import numpy as np

    from zsar.data.synth import draw_params, encode_video, render

    frames, segments = [], []
    for k, cls in enumerate(classes):
        frames.append(render(draw_params(np.random.default_rng([seed, k]), cls), SEGMENT_FRAMES, 32))
        start = k * SEGMENT_FRAMES / CAPTION_FPS
        segments.append((start, start + (SEGMENT_FRAMES - 1) / CAPTION_FPS, f"a shape {cls}."))
    encode_video(np.concatenate(frames), path, CAPTION_FPS)
    return segments


def make_activitynet(root: Path, videos: dict[str, list[str]], absent: tuple[str, ...] = (), ext: str = ".mp4") -> Path:
    """videos: id (with its `v_` prefix) -> the demo classes of its segments. Writes
    captions/train.json (every id, `absent` ones too) and videos/<id><ext> (all but `absent`)."""
    captions = {}
    for vid, classes in videos.items():
        segments = caption_video(root / "videos" / f"{vid}{ext}", classes, seed=len(captions))
        if vid in absent:
            (root / "videos" / f"{vid}{ext}").unlink()
        captions[vid] = {"duration": len(classes) * SEGMENT_FRAMES / CAPTION_FPS,
                         "timestamps": [[s, e] for s, e, _ in segments], "sentences": [c for _, _, c in segments]}
    (root / "captions").mkdir(parents=True, exist_ok=True)
    (root / "captions" / "train.json").write_text(json.dumps(captions, indent=1))
    return root
