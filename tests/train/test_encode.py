"""The one-pass encoding's bookkeeping: stacked parts split back with their own row indices."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from zsar.data.dataset import make_manifest
from zsar.models.text import LabelSet
from zsar.train.encode import indexed, split_shards


def test_stacked_shards_split_back_into_each_parts_own_rows(tmp_path):
    # parts of 3, 2 and 4 rows stacked (global index 0..8), written as three shards that mix them
    sizes = [3, 2, 4]
    part = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    stacked = tmp_path / "all"
    stacked.mkdir()
    for name, rows in (("a.parquet", [8, 0, 4]), ("b.parquet", [3, 5]), ("c.parquet", [1, 2, 6, 7])):
        pq.write_table(pa.table({"index": pa.array(rows, pa.int64()), "path": [f"p{part[r]}-{r}" for r in rows],
                                 "x": np.asarray(rows, np.float32) * 10}), stacked / name)
    folders = split_shards(stacked, sizes, tmp_path / "parts")
    offsets = [0, 3, 5]
    for i, folder in enumerate(folders):
        table = pa.concat_tables([pq.read_table(f) for f in sorted(folder.glob("*.parquet"))]).to_pylist()
        assert sorted(r["index"] for r in table) == list(range(sizes[i]))  # own indices, each row once
        for r in table:
            g = r["index"] + offsets[i]
            assert r["path"] == f"p{i}-{g}" and r["x"] == g * 10  # the row that was stacked there
    assert sorted(f.name for f in folders[2].glob("*.parquet")) == ["a.parquet", "b.parquet", "c.parquet"]
    assert sorted(f.name for f in folders[1].glob("*.parquet")) == ["a.parquet", "b.parquet"]


def test_only_parts_indexed_from_zero_are_stacked():
    labels = LabelSet(("a", "b"))
    whole = make_manifest(["x.mp4", "y.mp4", "z.mp4"], ["a", "b", "a"], labels)
    assert indexed(whole)
    assert not indexed(whole.filter(pa.array([True, False, True])))  # a subset keeps its old indices
