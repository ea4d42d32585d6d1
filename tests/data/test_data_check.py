"""`zsar data check` on real encoded videos: every failed file named with its reason; exit status."""

import os

from zsar.data.check import check_dataset
from zsar.data.probe import probe_file
from conftest import REAL_CLIPS
from video_trees import make_hmdb, make_ucf, ucf_class

CLIP = next(p for p in REAL_CLIPS if p.name == "apply_eye_makeup.avi")
MP4 = next(p for p in REAL_CLIPS if p.name == "arm_wrestling.mp4")
GOOD = ["v_ApplyEyeMakeup_g01_c01.avi", "v_Archery_g01_c01.avi", "v_Typing_g01_c01.avi", "v_YoYo_g02_c03.avi", "v_HandStandPushups_g01_c01.avi"]
CORRUPT = "v_Basketball_g01_c01.avi"  # random bytes
TRUNCATED = "v_Biking_g01_c01.avi"  # the first 4 kB of a real mp4
MISSING = "v_Rowing_g01_c01.avi"  # listed, never written


def _check(capsys, *args: str) -> tuple[int, str, str]:
    """`zsar data check ARGS` in process: (exit status, stdout, stderr)."""
    from zsar.cli import main

    code = main(["data", "check", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _ucf(root, bad: bool):
    names = GOOD + ([CORRUPT, TRUNCATED] if bad else [])
    make_ucf(root, names, train=names[:3], test=names[3:] + ([MISSING] if bad else []), clip=CLIP)
    if bad:
        for name, data in ((CORRUPT, os.urandom(20000)), (TRUNCATED, MP4.read_bytes()[:4096])):
            path = root / "UCF-101" / ucf_class(name) / name
            path.unlink()  # a hard link to the clip: replace it, do not write through it
            path.write_bytes(data)
    return root


def test_probe_reads_real_clips_and_rejects_broken_ones(tmp_path):
    for clip in REAL_CLIPS:
        assert probe_file(str(clip))["status"] == "ok", clip.name
    (tmp_path / "x.avi").write_bytes(b"not a video at all")
    bad = probe_file(str(tmp_path / "x.avi"))
    assert bad["status"] == "bad" and "InvalidData" in bad["reason"]
    missing = probe_file(str(tmp_path / "none.mp4"))["reason"]
    assert missing.startswith("FileNotFoundError") and "No such file" in missing


def test_check_names_every_failed_file_and_exits_non_zero(tmp_path, session_home, capsys):
    root = _ucf(tmp_path / "bad", bad=True)
    code, stdout, stderr = _check(capsys, "--dataset", "ucf101", "--root", str(root), "--protocol", "full", "--split", "split1")
    assert code == 1, stdout + stderr
    lines = stdout.splitlines()
    failed = {line.split()[0]: line for line in lines if line.startswith(("missing", "unreadable"))}
    by_file = {os.path.basename(line.split(":")[0].split()[-1]): line for line in lines if line.startswith(("missing", "unreadable"))}
    assert set(by_file) == {MISSING, CORRUPT, TRUNCATED}, stdout
    assert by_file[MISSING].startswith("missing") and "testlist01.txt:" in by_file[MISSING] and "no file" in by_file[MISSING]
    assert by_file[CORRUPT].startswith("unreadable") and "Error" in by_file[CORRUPT]
    # an MP4 cut with its index at the end opens not at all: unreadable, and the reason says why
    assert by_file[TRUNCATED].startswith("unreadable") and "truncated: the file ends inside its 'mdat' box" in by_file[TRUNCATED]
    assert failed and "UNUSABLE" in stdout and "3 of 8 videos missing or unreadable" in stdout
    assert "full/split1: train 3 videos / 101 classes, test 4 videos / 101 classes" in stdout


def test_check_clean_tree_exits_zero(tmp_path, session_home, capsys):
    root = _ucf(tmp_path / "clean", bad=False)
    code, stdout, stderr = _check(capsys, "--dataset", "ucf101", "--root", str(root), "--protocol", "full")
    assert code == 0, stdout + stderr
    assert stdout.strip().splitlines()[-1] == "usable"
    # every video of this tree is a hard link to one clip: the two test videos are flagged as copies
    assert "5 videos checked by decoding: 5 decode, 0 unreadable; other problems: 2 same_content" in stdout


def test_tolerated_failures_and_structural_problems(tmp_path):
    root = _ucf(tmp_path / "bad", bad=True)
    report = check_dataset("ucf101", str(root), "full", "split1", max_failures=0.5)
    assert report.usable and report.failures == 3 and report.named == 8
    # HMDB: a video in the wrong class folder disagrees with its split file: unusable whatever the tolerance
    kick = "FOOT_2009_(REMI_GAILLARD)_kick_f_cm_np1_ba_med_5.avi"
    ball = "Britney_Spears_-_Comercial_Pepsi_soccer_kick_ball_f_nm_np1_ba_med_0.avi"
    brush = "Aussie_Brunette_Brushing_Long_Hair_brush_hair_u_nm_np1_ba_med_3.avi"
    hmdb = make_hmdb(tmp_path / "hmdb", [kick, ball, brush], {kick: 2, ball: 2, brush: 1}, clip=CLIP)
    assert check_dataset("hmdb51", str(hmdb), "full", "split1").usable
    os.rename(hmdb / "hmdb51_org" / "kick" / kick, hmdb / "hmdb51_org" / "kick_ball" / kick)
    report = check_dataset("hmdb51", str(hmdb), "full", "split1", max_failures=1.0)
    assert not report.usable
    (mismatch,) = [i for i in report.issues if i.kind == "mismatch"]
    assert mismatch.path.endswith(kick) and "'kick'" in mismatch.reason and "'kick ball'" in mismatch.reason


def test_check_user_errors_exit_2(tmp_path, session_home, capsys):
    code, _, stderr = _check(capsys, "--dataset", "ucf101", "--root", str(tmp_path / "nowhere"))
    assert code == 2 and "root not found" in stderr and len(stderr.strip().splitlines()) == 1


def test_check_a_uri_root_reports_what_the_local_root_does(tmp_path, session_home, capsys):
    root = _ucf(tmp_path / "bad", bad=True)
    code, stdout, stderr = _check(capsys, "--dataset", "ucf101", "--root", root.as_uri(), "--protocol", "full", "--split", "split1")
    assert code == 1, stdout + stderr
    local = check_dataset("ucf101", str(root), "full", "split1")
    expected = [f"{i.kind:<13} {i.path}: {i.reason}" for i in sorted(local.issues, key=lambda i: (not i.is_error, i.kind, i.path))]
    lines = [line.replace("file://", "") for line in stdout.splitlines()[:len(expected)]]
    # a decoder error names a file opened from a file object '<none>': compare those up to the reason
    assert [line.split(": ")[0] for line in lines] == [line.split(": ")[0] for line in expected]
    assert [line for line in lines if not line.startswith("unreadable")] == [line for line in expected if not line.startswith("unreadable")]
    assert sum(line.startswith("unreadable") and "Error" in line for line in lines) == 2
    assert f"unreadable    {root.as_uri()}/UCF-101/" in stdout and f"ucf101 at {root.as_uri()}" in stdout
    assert "3 of 8 videos missing or unreadable" in stdout
