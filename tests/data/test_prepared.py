"""The prepared-clip cache: exact round trips, rebuilt when a setting changes, stale entries
never read, and the same at a `file://` URI."""

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from zsar.data.order import seed_key
from zsar.config import DataConfig
from zsar.data.feed import BlockFeed
from zsar.data.pipeline import decoded_dataset
from zsar.data.prepared import PreparedCache, pick_clip, prepare_part, prepared_dataset, prepared_key
from zsar.data.video import ClipSpec
from conftest import REAL_CLIPS
from test_pipeline import rows
from test_video import _bad_files

EVAL = ClipSpec(num_frames=4, sampler="segment", views=2, crops=1, size=16)


def manifest(paths) -> pa.Table:
    return pa.table({"path": [str(p) for p in paths], "label": [i % 2 for i in range(len(paths))],
                     "index": list(range(len(paths)))})


def _prepare(cache, m, spec, train=False, clips=1, seed=0, log=print):
    return prepare_part(cache, m, spec, DataConfig(decode_batch=2), train=train, clips=clips, seed=seed,
                        part="test/full/all/eval/test", what="test clips", log=log)


def test_the_key_follows_the_manifest_and_every_sampling_setting():
    m = manifest(REAL_CLIPS[:3])
    key = prepared_key(m, EVAL)
    assert prepared_key(m, dataclasses.replace(EVAL, decoder_threads=4, decode="sequential")) == key  # same pixels
    for changed in (dataclasses.replace(EVAL, num_frames=8), dataclasses.replace(EVAL, views=3),
                    dataclasses.replace(EVAL, sampler="dense"), dataclasses.replace(EVAL, size=32)):
        assert prepared_key(m, changed) != key
    assert prepared_key(manifest(REAL_CLIPS[:2]), EVAL) != key
    train = dataclasses.replace(EVAL, train=True, views=1)
    assert prepared_key(m, train, clips=2, seed=0) != prepared_key(m, train, clips=3, seed=0)
    assert prepared_key(m, train, clips=2, seed=0) != prepared_key(m, train, clips=2, seed=1)
    assert prepared_key(m, EVAL, clips=2, seed=5) == key  # fixed views: K and seed do not apply


def _stored(cache, key) -> dict:
    """An entry's rows as its shards hold them ({column: array}, shard order), read without Ray."""
    import pyarrow.parquet as pq

    shards = cache.shards(key)
    table = pa.concat_tables([pq.read_table(f, filesystem=shards.fs) for f in shards.files])
    return {"video": np.stack(table["video"].to_pandas().to_list()), "index": table["index"].to_numpy()}


@pytest.fixture(scope="module")
def live_rows(tmp_path_factory, ray_session):
    """The real clips and two bad files, and their rows decoded live (without a cache), once for
    both cache roots."""
    bad = _bad_files(tmp_path_factory.mktemp("bad"), REAL_CLIPS[0])[:2]
    small = [p for p in REAL_CLIPS if not p.name.startswith("ntu")]  # the 1080p clip costs ~5x the others to decode
    m = manifest([*small, *bad])
    return m, rows(decoded_dataset(m, EVAL, DataConfig(), seed_key=seed_key(0, None)))


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_prepared_clips_round_trip_exactly_and_failures_are_kept(tmp_path, live_rows, as_uri):
    m, live = live_rows
    root = f"file://{tmp_path}/clips" if as_uri else str(tmp_path / "clips")
    cache = PreparedCache(root)
    done = _prepare(cache, m, EVAL)
    assert done["written"] and len(done["failures"]) == 2
    messages = []
    ds = prepared_dataset(cache, m, EVAL, train=False, clips=1, seed=0, part="test/full/all/eval/test", log=messages.append)
    back = rows(ds)
    assert sorted(back) == sorted(live) and any("prepared clips" in x for x in messages)
    for i in live:
        for k in ("video", "label", "ok", "short", "error", "path"):
            assert np.array_equal(back[i][k], live[i][k]) if k == "video" else back[i][k] == live[i][k], (i, k)
    assert not _prepare(cache, m, EVAL)["written"]  # complete: not decoded again
    # a run reads the entry's shards without Ray Data: the same rows, columns and types as the
    # Ray Data read above (what entries too large for the object store stream through)
    via_shards = BlockFeed.from_shards(cache.shards(done["key"]), m.num_rows, seed=0)
    seen = []
    for batch in via_shards.eval_batches(0, 1, 3):
        assert set(batch) == set(back[0])
        for row, i in enumerate(batch["index"]):
            seen.append(int(i))
            for k in batch:
                ours, theirs = np.asarray(batch[k][row]), np.asarray(back[int(i)][k])
                assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), (int(i), k)
            assert np.array_equal(batch["video"][row], live[int(i)]["video"]) and batch["path"][row] == live[int(i)]["path"]
    assert sorted(seen) == sorted(live)


def test_a_changed_setting_misses_says_why_and_is_rebuilt(tmp_path, ray_session):
    m = manifest(REAL_CLIPS[1:3])
    cache = PreparedCache(str(tmp_path / "clips"))
    _prepare(cache, m, EVAL)
    eight = dataclasses.replace(EVAL, num_frames=8)
    messages = []
    assert prepared_dataset(cache, m, eight, train=False, clips=1, seed=0, part="test/full/all/eval/test",
                            log=messages.append) is None
    assert any("other settings" in x and "num_frames 4 (now 8)" in x for x in messages), messages
    key = _prepare(cache, m, eight)["written"] and prepared_key(m, eight)
    assert prepared_dataset(cache, m, eight, train=False, clips=1, seed=0) is not None
    assert _stored(cache, key)["video"].shape == (2, 2, 8, 16, 16, 3)  # rows, views, frames
    assert len(cache.entries()) == 2 and {e["kind"] for e in cache.entries()} == {"clips"}


def test_a_damaged_entry_is_never_read_and_is_rebuilt(tmp_path, ray_session):
    m = manifest(REAL_CLIPS[1:3])
    cache = PreparedCache(str(tmp_path / "clips"))
    key = _prepare(cache, m, EVAL)["key"]
    shard = next((tmp_path / "clips" / key).glob("*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-100])
    messages = []
    assert prepared_dataset(cache, m, EVAL, train=False, clips=1, seed=0, log=messages.append) is None
    assert any("not used" in x for x in messages)
    assert _prepare(cache, m, EVAL, log=messages.append)["written"] and cache.problem(key, 2) is None


def test_training_entries_hold_k_clips_and_each_epoch_picks_one_by_seed_epoch_and_index(tmp_path, ray_session):
    m = manifest(REAL_CLIPS[1:3])
    spec = ClipSpec(num_frames=4, size=16, train=True, flip=True)
    cache = PreparedCache(str(tmp_path / "clips"))
    key = _prepare(cache, m, spec, train=True, clips=3, seed=7)["key"]
    # the stored shards as they are, read without Ray: the entry keeps all K clips; the feed picks one
    table = _stored(cache, key)
    stored = table["video"]
    assert stored.shape == (2, 3, 1, 4, 16, 16, 3)
    assert not np.array_equal(stored[0, 0], stored[0, 1])  # three different random clips
    index = table["index"].tolist()
    assert prepared_dataset(cache, m, spec, train=True, clips=3, seed=7) is not None
    order = np.argsort(table["index"])
    batch = {k: table[k][order] for k in ("video", "index")}
    picks = {}
    for epoch in range(12):
        picked = pick_clip(dict(batch), [7, epoch])
        again = pick_clip(dict(batch), [7, epoch])
        assert np.array_equal(picked["video"], again["video"])  # a function of (seed, epoch, index)
        assert picked["video"].shape == (2, 1, 4, 16, 16, 3)
        for row, i in enumerate(batch["index"]):
            k = next(k for k in range(3) if np.array_equal(picked["video"][row], stored[index.index(i), k]))
            picks.setdefault(int(i), set()).add(k)
    assert all(len(ks) > 1 for ks in picks.values())  # epochs pick different clips


def test_zsar_prepare_then_a_run_reads_the_clips_and_not_after_a_setting_changes(tmp_path, zsar_home, ray_session, capsys):
    import shutil

    from zsar.cli import main
    from zsar.config import resolve
    from zsar.train.inputs import build_feeds
    from zsar.train.plan import build_plan

    for cls, p in (("wrestling", REAL_CLIPS[1]), ("sports", REAL_CLIPS[2])):
        (tmp_path / "tree" / cls).mkdir(parents=True)
        shutil.copy(p, tmp_path / "tree" / cls / p.name)
    cache = tmp_path / "clips"
    args = ["--dataset", "folder", "--root", f"file://{tmp_path / 'tree'}", "--protocol", "full",
            "--set", "data.num_frames=2", "data.size=16", "backbone.name=zsar-tiny", "backbone.pretrained=null",
            "data.feature_cache=false", f"data.prepared_cache=file://{cache}"]
    assert main(["prepare", *args]) == 0
    out = capsys.readouterr().out
    assert "2 videos" in out and "folder/full/all/eval/test" in out

    cfg = resolve(overrides={"root": f"file://{tmp_path / 'tree'}", "data": {"num_frames": 2, "size": 16,
                  "feature_cache": False, "prepared_cache": f"file://{cache}"},
                  "backbone": {"name": "zsar-tiny", "pretrained": None}, "split": "all"},
                  dataset="folder", protocol="full")
    plan = build_plan(cfg, "all")
    feeds, _ = build_feeds(cfg, plan)
    assert "prepared clips" in capsys.readouterr().err
    got = {int(i): {k: b[k][j] for k in b} for b in feeds["eval/test"].eval_batches(0, 1, 4) for j, i in enumerate(b["index"])}
    assert len(got) == 2 and all(r["ok"] for r in got.values()) and got[0]["video"].shape[-4:] == (2, 16, 16, 3)
    assert [e["hits"] for e in PreparedCache(f"file://{cache}").entries()] == [1]  # the run's read is counted once

    changed = cfg.__class__(**{**cfg.__dict__, "data": dataclasses.replace(cfg.data, num_frames=3)})
    build_feeds(changed, plan)
    assert "exist with other settings, not used" in capsys.readouterr().err


def test_cache_ls_and_rm_cover_prepared_clips(zsar_home, ray_session, capsys):
    from zsar.cli import main
    from zsar.data.prepared import default_root

    cache = PreparedCache(default_root())
    cache.remove(None)
    key = _prepare(cache, manifest(REAL_CLIPS[2:3]), EVAL)["key"]
    assert main(["cache", "ls"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(key))
    assert line.split()[1] == "clips" and "test clips" in line
    assert main(["cache", "rm", key[:8]]) == 0
    assert f"removed {key}" in capsys.readouterr().out and cache.entries() == []
