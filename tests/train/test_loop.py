"""The loop's fault-injection hold (`hold_after_report`): the cluster test kills a worker while the
workers wait there, so the hold must wait exactly while its file exists, and only after epoch 1."""

import threading
import time

from zsar.train.loop import HOLD, hold_after_report


def test_the_hold_waits_after_epoch_1_while_its_file_exists(tmp_path, monkeypatch):
    flag = tmp_path / "hold"
    flag.touch()
    monkeypatch.setenv(HOLD, str(flag))
    t0 = time.monotonic()
    hold_after_report(2, limit_s=1)  # other epochs pass at once
    assert time.monotonic() - t0 < 0.1
    threading.Timer(0.5, flag.unlink).start()
    hold_after_report(1)
    assert 0.45 < time.monotonic() - t0 < 5  # released by the file's removal
    t1 = time.monotonic()
    flag.touch()
    hold_after_report(1, limit_s=0.3)  # never longer than its limit
    assert 0.25 < time.monotonic() - t1 < 2


def test_without_the_variable_nothing_waits(tmp_path, monkeypatch):
    (tmp_path / "hold").touch()
    monkeypatch.delenv(HOLD, raising=False)
    t0 = time.monotonic()
    hold_after_report(1, limit_s=1)
    assert time.monotonic() - t0 < 0.1
