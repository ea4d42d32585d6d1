"""`activitynet_captions`: ActivityNet Captions as downloaded, for CEZSAR's published regime.

Layout: the caption files `train.json` / `val_1.json` (ActivityNet Captions' JSON, read by
`zsar.data.captions`; anywhere up to three folders below `--root`, e.g. `captions/`) and the
ActivityNet videos `v_<id>.mp4` / `.mkv` / `.webm` anywhere below it (e.g. `videos/`,
`v1-2/train/`). A JSON id already carries the `v_` prefix; its video is the file of that name
with any video extension.

Protocol `cezsar_captions` (CEZSAR's public regime: pre-train on caption segments, test zero-shot
with no training class): split `train` trains on every segment of `train.json` (`val_1`: of
`val_1.json` instead, a variant). Each caption segment is one training row: its video, its
bounds (`start_s`, `end_s`: clips are sampled among the frames inside [start, end] seconds,
`zsar.data.video.window_frames`) and its own sentence as its label. The training label set is
the segments' sentences, each once and `verbatim` (a sentence is its own only prompt), so a
row's label is the index of its sentence. Evaluation is `eval_targets`: by default UCF-101 (every
video, all 101 classes: `ucf101/full/top1`) and Kinetics-400 (every validation video, all 400
classes: `kinetics400/val/top1`); their roots come from `roots.ucf101` / `roots.kinetics400`.

A segment whose video has no file is left out; each such video is recorded once (`missing`, `zsar
data check` lists them) and counted in the plan's notes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from zsar.data import remote
from zsar.data.captions import load_captions
from zsar.data.dataset import VIDEO_EXTENSIONS, Dataset, Part, Plan, make_manifest
from zsar.data.files import FileIndex, Issues
from zsar.data.sources import root_error
from zsar.data.tree import Tree
from zsar.errors import DataError
from zsar.models.text import LabelSet
from zsar.registry import register_dataset

LAYOUT = "train.json / val_1.json (ActivityNet Captions) and the videos v_<id>.mp4|.mkv|.webm"
CAPTION_FILES = {"train": "train.json", "val_1": "val_1.json"}
CEZSAR_TARGETS = [
    {"dataset": "ucf101", "protocol": "zeroshot", "splits": ["full"]},
    {"dataset": "kinetics400", "protocol": "zeroshot", "splits": ["val"]},
]


@register_dataset("activitynet_captions")
class ActivityNetCaptions(Dataset):
    protocols = {"cezsar_captions": tuple(CAPTION_FILES)}
    variant_splits = {"cezsar_captions": ("val_1",)}
    protocol_defaults = {"cezsar_captions": {"eval_targets": CEZSAR_TARGETS}}
    description = f"ActivityNet Captions: {LAYOUT}"
    quiet = False  # `zsar data check` silences the per-plan warning (it prints every issue)

    def __init__(self, root: str | None = None):
        super().__init__(root)
        self.root = str(root) if remote.is_uri(root) else str(Path(root).expanduser())
        if not remote.is_dir(self.root):
            raise root_error(root, self.name, LAYOUT)
        self.issues = Issues()
        self.tree = Tree.scan(self.root)
        self.index = FileIndex(self.tree.files(VIDEO_EXTENSIONS))
        self.index.report_duplicates(self.issues)

    def caption_file(self, split: str) -> str:
        name = CAPTION_FILES[split]
        found = self.tree.find_files(name)
        if not found:
            raise DataError(f"{self.name}: no {name} under {self.root} (the caption files of ActivityNet Captions; "
                            f"{self.name} looks for {LAYOUT})")
        return found[0]

    def plan(self, protocol: str, split: str) -> Plan:
        if self.check_protocol(protocol, split) == "all":
            raise DataError(f"{self.name}: a plan is for one split; `all` means {', '.join(self.splits_for_all(protocol))}")
        path = self.caption_file(split)
        segments, skipped = load_captions(path, f"{self.name} {split}")
        rel = self.tree.relative(path)
        rows, missing = [], {}
        for seg in segments:
            video = self.index.find(seg.video_id)
            if video is None:
                missing[seg.video_id] = missing.get(seg.video_id, 0) + 1
                continue
            rows.append((video, seg))
        for video_id, count in missing.items():
            self.issues.add("missing", video_id, f"{rel}: {count} caption segments; no file {video_id}.* under {self.root}")
        listed = len({seg.video_id for seg in segments})
        if not rows:
            raise DataError(f"{self.name}: none of the {listed} videos of {rel} has a file under {self.root} "
                            f"(looks for {LAYOUT})")
        notes = {"captions": rel, "segments": len(rows), "videos": listed - len(missing), "training_classes": 0}
        if skipped:
            notes["skipped_videos"] = skipped
        if missing:
            notes["missing"] = {"train": {"missing": len(missing), "listed": listed,
                                          "segments_left_out": sum(missing.values())}}
            if not self.quiet:
                print(f"[zsar] warning: {self.name} {protocol}/{split}: {len(missing)} of {listed} videos of {rel} have no "
                      f"file under {self.root} ({sum(missing.values())} segments left out; `zsar data check` lists them)",
                      file=sys.stderr)
        return Plan(self.name, protocol, split, segment_part(rows), [], kind="targets", notes=notes)


def segment_part(rows) -> Part:
    """The training part: one row per (video path, caption segment), labelled by its sentence."""
    labels = LabelSet(tuple(dict.fromkeys(seg.sentence for _, seg in rows)), verbatim=True)
    manifest = make_manifest([v for v, _ in rows], [seg.sentence for _, seg in rows], labels,
                             start_s=[seg.start for _, seg in rows], end_s=[seg.end for _, seg in rows])
    return Part("train", manifest, labels)
