import shutil
from pathlib import Path

import ray.train

from zsar.train.reporter import private_copy


def test_each_restoring_process_reads_its_own_copy_of_a_checkpoint(tmp_path):
    # Two workers of one machine restoring the same checkpoint must not share a download
    # directory: the second download rewrites files while the first is still reading them.
    src = tmp_path / "ckpt"
    src.mkdir()
    (src / "state.pt").write_bytes(b"x" * 1000)
    checkpoint = ray.train.Checkpoint.from_directory(str(src))

    first, second = private_copy(checkpoint), private_copy(checkpoint)
    try:
        assert first != second
        assert (Path(first) / "state.pt").read_bytes() == (Path(second) / "state.pt").read_bytes() == b"x" * 1000
        (Path(second) / "state.pt").write_bytes(b"")
        assert (Path(first) / "state.pt").stat().st_size == 1000
        assert private_copy(None) is None
    finally:
        shutil.rmtree(first, ignore_errors=True)
        shutil.rmtree(second, ignore_errors=True)
