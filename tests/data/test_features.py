"""The frozen-feature cache's key, its integrity check and its rebuild of a damaged entry."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from zsar.data.features import FeatureCache, FrozenInput, check_entry, entry_files, feature_key

FRAMES = FrozenInput("frame_features", "visual.encode_image of every frame")
SPEC = {"num_frames": 8, "sampler": "segment", "views": 1, "crops": 1, "size": 32}


def _manifest(paths=("a.mp4", "b.mp4"), labels=(0, 1)):
    return pa.table({"path": list(paths), "label": list(labels), "index": list(range(len(paths)))})


def test_the_key_changes_with_each_input_and_with_nothing_else():
    base = feature_key("zsar-tiny@abc", (FRAMES,), _manifest(), SPEC)
    assert feature_key("zsar-tiny@abc", (FRAMES,), _manifest(), dict(SPEC)) == base  # equal inputs, new objects
    changed = [
        feature_key("zsar-tiny@abd", (FRAMES,), _manifest(), SPEC),  # other weights
        feature_key("ViT-B-16@abc", (FRAMES,), _manifest(), SPEC),  # other encoder
        feature_key("zsar-tiny@abc", (FrozenInput("frame_features", "dense tokens"),), _manifest(), SPEC),  # other output
        feature_key("zsar-tiny@abc", (FRAMES, FrozenInput("tokens", "dense tokens")), _manifest(), SPEC),
        feature_key("zsar-tiny@abc", (FRAMES,), _manifest(paths=("a.mp4", "c.mp4")), SPEC),  # other video
        feature_key("zsar-tiny@abc", (FRAMES,), _manifest(labels=(1, 0)), SPEC),  # other labels
        feature_key("zsar-tiny@abc", (FRAMES,), _manifest(paths=("b.mp4", "a.mp4"), labels=(1, 0)), SPEC),  # other order
        feature_key("zsar-tiny@abc", (FRAMES,), _manifest(), {**SPEC, "views": 3}),  # other views
        feature_key("zsar-tiny@abc", (FRAMES,), _manifest(), {**SPEC, "sampler": "dense"}),  # other sampling
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def _write_features(folder, rows=6, files=2):
    folder.mkdir(parents=True)
    per = rows // files
    for i in range(files):
        pq.write_table(pa.table({"index": np.arange(i * per, (i + 1) * per), "x": np.random.rand(per)}), folder / f"part-{i}.parquet")
    return rows


def _indices(use) -> list[int]:
    """The rows of an entry as a run reads them: its listed shards, straight from Parquet."""
    return sorted(i for f in entry_files(use.path) for i in pq.read_table(f, columns=["index"])["index"].to_pylist())


def test_a_truncated_or_missing_shard_fails_the_check(tmp_path):
    cache = FeatureCache(tmp_path / "features")
    builds = []

    def build(tmp):
        builds.append(tmp)
        return _write_features(tmp)

    use = cache.entry("k1", 6, build, "test rows", log=lambda m: None)
    assert not use.hit and use.encoded == 6 and _indices(use) == list(range(6)) and len(builds) == 1
    entry = cache.path("k1")
    assert use.path == str(entry) and check_entry(entry, 6) is None
    assert "rows" in check_entry(entry, 7)  # a manifest that no longer matches the part

    use = cache.entry("k1", 6, build, "test rows", log=lambda m: None)
    assert use.hit and use.encoded == 0 and len(builds) == 1 and _indices(use) == list(range(6))
    assert cache.entries()[0]["hits"] == 1

    shard = sorted(entry.glob("*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:-40])  # truncated
    assert "checksum" in check_entry(entry, 6)
    messages = []
    use = cache.entry("k1", 6, build, "test rows", log=messages.append)
    assert not use.hit and len(builds) == 2 and _indices(use) == list(range(6))
    assert any("rebuilding" in m for m in messages) and check_entry(entry, 6) is None

    sorted(entry.glob("*.parquet"))[1].unlink()
    assert "missing" in check_entry(entry, 6)


def test_a_partial_write_is_never_published(tmp_path):
    cache = FeatureCache(tmp_path / "features")

    def failing_build(tmp):
        _write_features(tmp)
        raise RuntimeError("the producer died")

    with pytest.raises(RuntimeError, match="producer died"):
        cache.entry("k2", 6, failing_build, "test rows", log=lambda m: None)
    assert not cache.path("k2").exists() and list((tmp_path / "features").iterdir()) == []


def test_remove_by_unique_prefix_or_all(tmp_path):
    from zsar.errors import ConfigError

    cache = FeatureCache(tmp_path / "features")
    for key in ("abc1", "abd2", "xyz3"):
        _write_features(cache.path(key))
        (cache.path(key) / "manifest.json").write_text(json.dumps({"what": key, "rows": 6, "files": {}}))
    with pytest.raises(ConfigError, match="2 entries"):
        cache.remove("ab")
    assert cache.remove("abc") == ["abc1"]
    assert sorted(cache.remove(None)) == ["abd2", "xyz3"] and cache.entries() == []


def test_an_entry_read_as_a_ray_dataset_is_its_listed_shards_in_order(tmp_path, ray_session):
    from zsar.data.features import read_entry, read_shards

    cache = FeatureCache(tmp_path / "features")
    use = cache.entry("k1", 6, lambda tmp: _write_features(tmp, rows=6, files=3), "test rows", log=lambda m: None)
    (cache.path("k1") / "stray.parquet").write_bytes(b"not listed")  # not in the manifest: never read
    shards = pa.concat_tables([pq.read_table(f) for f in entry_files(use.path)])
    got = read_entry(use.path).take_all()
    assert [r["index"] for r in got] == shards["index"].to_pylist() == list(range(6))  # shard by shard, in order
    assert [r["x"] for r in got] == shards["x"].to_pylist()
    only = read_shards(entry_files(use.path)[1:], columns=["x"]).take_all()
    assert [r["x"] for r in only] == shards["x"].to_pylist()[2:] and set(only[0]) == {"x"}
