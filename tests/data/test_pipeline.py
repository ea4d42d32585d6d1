"""The Ray Data decode path on the real clips: right frames, bad files skipped with reasons."""


import numpy as np
import pyarrow as pa
import pytest

from zsar.data.order import seed_key
from zsar.config import DataConfig
from zsar.data.pipeline import decoded_dataset, guided_block_sizes, task_memory
from zsar.data.video import ClipSpec, load_clip
from conftest import REAL_CLIPS
from test_video import SAMPLERS, _bad_files, all_frames, expected_clip


def manifest(paths) -> pa.Table:
    return pa.table({"path": [str(p) for p in paths], "label": list(range(len(paths))), "index": list(range(len(paths)))})


def rows(ds) -> dict:
    out = {}
    for batch in ds.iter_batches(batch_size=4, batch_format="numpy"):
        for i, index in enumerate(batch["index"]):
            out[int(index)] = {k: batch[k][i] for k in batch}
    return out


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_real_clips_decode_through_ray_data_with_the_sampler_frames(sampler, ray_session):
    spec = SAMPLERS[sampler]
    got = rows(decoded_dataset(manifest(REAL_CLIPS), spec, DataConfig(decode_batch=2), seed_key=seed_key(0, None)))
    assert sorted(got) == list(range(len(REAL_CLIPS)))
    for i, path in enumerate(REAL_CLIPS):
        assert got[i]["ok"] and got[i]["error"] == ""
        assert np.array_equal(got[i]["video"], expected_clip(all_frames(path, spec.resize_to), spec)), path.name


def test_bad_files_are_skipped_with_reasons_and_good_clips_of_the_batch_survive(tmp_path, ray_session):
    bad = _bad_files(tmp_path, REAL_CLIPS[0])  # truncated, zero bytes, random bytes, text .mp4, missing
    paths = [str(REAL_CLIPS[1]), *bad, str(REAL_CLIPS[2])]
    spec = ClipSpec(num_frames=4, size=16)
    # One batch holds every file: a failure must not cost the good files next to it.
    got = rows(decoded_dataset(manifest(paths), spec, DataConfig(decode_batch=len(paths)), seed_key=seed_key(0, None)))
    ok = [bool(got[i]["ok"]) for i in range(len(paths))]
    assert ok == [True] + [False] * len(bad) + [True]
    reasons = {paths[i].rsplit("/", 1)[-1]: got[i]["error"] for i in range(1, len(bad) + 1)}
    assert all(reasons.values()), reasons
    assert "No such file" in reasons["missing.mp4"] or "FileNotFound" in reasons["missing.mp4"]
    for i, p in ((0, REAL_CLIPS[1]), (len(paths) - 1, REAL_CLIPS[2])):
        assert np.array_equal(got[i]["video"], load_clip(str(p), spec)[0])
    assert not any(got[i]["video"].any() for i in range(1, len(bad) + 1))


def test_a_video_shorter_than_the_clip_is_padded_and_flagged(ray_session):
    short = next(p for p in REAL_CLIPS if p.name.startswith("ntu"))  # 103 frames < the 8x32 dense span
    spec = ClipSpec(num_frames=8, sampler="dense", stride=32, size=16)  # indices 0, 32, 64, 96, 102, 102, ...
    got = rows(decoded_dataset(manifest([short, REAL_CLIPS[1]]), spec, DataConfig(), seed_key=seed_key(0, None)))
    assert got[0]["ok"] and got[0]["short"] and not got[1]["short"]
    frames = all_frames(short, spec.resize_to)
    assert np.array_equal(got[0]["video"][0, -1], got[0]["video"][0, -2])  # the last frame repeated
    assert np.array_equal(got[0]["video"], expected_clip(frames, spec))


def test_task_memory_grows_with_the_batch_and_the_source_frames():
    assert task_memory(1000, 8, 0) - task_memory(1000, 4, 0) == 8000
    assert task_memory(0, 1, 8) > task_memory(0, 1, 0)


@pytest.mark.parametrize("rows,tasks,batch", [(100, 2, 2), (1000, 2, 4), (240_000, 16, 8), (5, 2, 4), (1, 2, 4)])
def test_guided_blocks_cover_every_row_and_shrink_to_one_batch_at_the_end(rows, tasks, batch):
    sizes = guided_block_sizes(rows, tasks, batch)
    assert sum(sizes) == rows and all(k > 0 for k in sizes)
    assert all(a >= b for a, b in zip(sizes, sizes[1:]))  # large first, small last
    assert sizes[-1] <= batch
    assert max(sizes) <= max(8 * batch, -(-rows // 64))
    if rows >= 64 * batch:
        assert sizes[0] > sizes[-1] and len(sizes) < rows / batch / 2  # fewer tasks than one per batch


def test_no_rows_no_blocks():
    assert guided_block_sizes(0, 2, 4) == []


def test_rows_the_preflight_marked_bad_are_failed_with_its_reason_without_loading():
    from zsar.data.pipeline import decode_rows

    batch = {"path": np.array(["good.mp4", "bad.mp4"], dtype=object), "label": np.arange(2), "index": np.arange(2),
             "skip": np.array(["", "InvalidDataError: probed"], dtype=object)}
    loaded = []

    def load(i, rng):
        loaded.append(i)
        return np.ones(3, np.float32), False

    out = decode_rows(batch, "x", (3,), np.float32, load, seed_key(0, None))
    assert loaded == [0]
    assert out["ok"].tolist() == [True, False] and out["error"].tolist() == ["", "InvalidDataError: probed"]
    assert out["x"][0].all() and not out["x"][1].any()
