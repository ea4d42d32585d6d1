"""User errors: one line naming what is wrong, exit 2, no traceback."""

import pytest

from conftest import cli_env, run_cli
from zsar.data.sources.demo import TRAIN_SHOTS


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--method", "nope", "--dataset", "demo"], "unknown method 'nope'"),
        (["train", "--method", "vificlip", "--dataset", "ucf"], "unknown dataset 'ucf'"),
        (["config", "show", "--method", "vificlip", "--dataset", "demo", "--set", "optim.lrr=1"], "optim.lrr"),
        (["config", "show", "--method", "vificlip", "--dataset", "demo", "--set", "optim.lr=abc"], "optim.lr"),
        (["config", "show", "--method", "vificlip", "--dataset", "demo", "--set", "nokeyvalue"], "key=value"),
        (["train", "--method", "vificlip", "--dataset", "folder", "--protocol", "full", "--dry-run"], "needs --root"),
        (["train", "--method", "vificlip", "--dataset", "folder", "--root", "/no/such/dir", "--protocol", "full", "--dry-run"], "not found"),
        (["train", "--method", "vificlip", "--dataset", "demo", "--protocol", "zeroshot", "--dry-run"], "no protocol 'zeroshot'"),
        (["train", "--config", "/no/such.yaml"], "config file not found"),
        (["eval", "--dataset", "demo"], "needs --checkpoint"),
        (["trian"], "invalid choice"),
        (["train", "--workers", "many"], "invalid int value"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, needle, zsar_home, capsys):
    code = _exit_code(args)
    out = capsys.readouterr()
    assert code == 2, out.out + out.err
    lines = [line for line in out.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out.err
    assert needle in lines[0]
    assert "Traceback" not in out.err


def _exit_code(args: list[str]) -> int:
    """`main`'s exit status in process (argparse's own errors exit through SystemExit)."""
    from zsar.cli import main

    try:
        return main(list(args))
    except SystemExit as e:
        return e.code


def test_config_show_prints_resolved_yaml(zsar_home, capsys):
    import yaml

    code = _exit_code(["config", "show", "--method", "vificlip", "--dataset", "demo", "--protocol", "base2novel", "--set", "optim.lr=0.002"])
    out = capsys.readouterr()
    assert code == 0, out.err
    cfg = yaml.safe_load(out.out)
    assert cfg["method"] == "vificlip" and cfg["optim"]["lr"] == 0.002 and cfg["backbone"]["name"] == "zsar-tiny"


def test_train_dry_run_resolves_data_without_training(small_demo_root, zsar_home, capsys):
    import json

    code = _exit_code(["train", "--method", "vificlip", "--dataset", "demo", "--root", str(small_demo_root), "--protocol", "base2novel", "--dry-run"])
    out = capsys.readouterr()
    assert code == 0, out.err
    summary = json.loads(out.out)
    assert summary["train_classes"] == 8 and summary["eval"]["novel"]["classes"] == 8
    assert summary["train_videos"] == 8 * min(TRAIN_SHOTS, 6)  # the small rendering has 6 training videos a class


# --------------------------------------------------------------------------- in process: one line, exit 2
def _binary(tmp_path):
    path = tmp_path / "clip.bin"
    path.write_bytes(bytes(range(256)) * 8)  # not UTF-8
    return str(path)


def _archive(tmp_path):
    path = tmp_path / "hmdb51_org.rar"
    path.write_bytes(b"Rar!\x1a\x07\x00" + bytes(200))
    return str(path)


@pytest.mark.parametrize(
    "make_args, needle",
    [
        (lambda t: ["train"], "zsar train needs --method and --dataset (or --config FILE)"),
        (lambda t: ["train", "--method", "vificlip"], "zsar train needs --dataset"),
        (lambda t: ["best", "--method", "vificlp", "--dataset", "folder"], "unknown method 'vificlp' (did you mean 'vificlip'?)"),
        (lambda t: ["best", "--method", "vificlip", "--dataset", "fodler"], "did you mean 'folder'?"),
        (lambda t: ["best", "--method", "vificlip", "--dataset", "folder", "--protocol", "base2novel"], "no protocol 'base2novel'"),
        (lambda t: ["train", "--method", "vificlip", "--dataset", "folder", "--root", _binary(t), "--protocol", "full", "--dry-run"],
         "is a file but not a text CSV: folder looks for a folder holding <class>/<video>"),
        (lambda t: ["train", "--method", "vificlip", "--dataset", "hmdb51", "--root", _binary(t), "--protocol", "base2novel", "--dry-run"],
         "is a file, not a folder: hmdb51 looks for a folder holding <class>/*.avi + testTrainMulti_7030_splits/"),
        (lambda t: ["data", "check", "--dataset", "hmdb51", "--root", _archive(t)], "unpack the archive and pass the folder"),
        (lambda t: ["train", "--method", "vificlip", "--dataset", "hmdb51", "--root", str(t / "nowhere"), "--protocol", "base2novel", "--dry-run"],
         "dataset root not found: " + "{t}/nowhere (hmdb51 looks for a folder holding <class>/*.avi"),
        (lambda t: ["data", "check", "--dataset", "ucf101", "--root", str(t)], "no video file (.mp4, .avi"),
    ],
)
def test_surface_errors_are_one_line_exit_2(make_args, needle, zsar_home, tmp_path, capsys):
    from zsar.cli import main

    assert main(make_args(tmp_path)) == 2
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.strip()]
    assert len(lines) == 1 and needle.replace("{t}", str(tmp_path)) in lines[0], out.err
    assert not out.out


def test_every_option_has_help_and_every_command_is_in_the_readme():
    import argparse

    from conftest import REPO
    from zsar.cli import build_parser

    def walk(parser, path=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, path + (name,))
            elif not isinstance(action, argparse._HelpAction):
                yield path, action

    actions = list(walk(build_parser()))
    missing = [(" ".join(path), a.option_strings or a.dest) for path, a in actions if not a.help]
    assert not missing, f"options without help: {missing}"
    commands = {path[0] for path, _ in actions if path}
    readme = (REPO / "README.md").read_text()
    block = readme.split("## Commands", 1)[1].split("```", 2)[1]
    listed = {line.split()[1] for line in block.splitlines() if line.startswith("zsar ")}
    assert commands <= listed, f"commands missing from the README's command list: {sorted(commands - listed)}"


def test_data_check_summary_and_copies_across_train_and_test(small_demo_root, tmp_path, capsys):
    import shutil

    from zsar.cli import main

    root = tmp_path / "mine"
    for split in ("train", "test"):
        for cls in sorted((small_demo_root / "videos" / split).iterdir())[:2]:
            shutil.copytree(cls, root / split / cls.name)
    train_video = sorted((root / "train").rglob("*.mp4"))[0]
    copy = root / "test" / train_video.parent.name / "renamed_copy.mp4"
    shutil.copyfile(train_video, copy)
    (root / "test" / train_video.parent.name / "broken.mp4").write_bytes(b"\x00not a video" * 50)
    videos = sorted(root.rglob("*.mp4"))
    assert main(["data", "check", "--dataset", "folder", "--root", str(root), "--max-failures", "0.5"]) == 0
    out = capsys.readouterr().out
    summary = [line for line in out.splitlines() if "videos checked" in line]
    assert summary == [f"  {len(videos)} videos checked by decoding: {len(videos) - 1} decode, 1 unreadable; other problems: 1 same_content"]
    (flagged,) = [line for line in out.splitlines() if line.startswith("same_content")]
    assert str(copy) in flagged and str(train_video) in flagged
    assert "unreadable" in out and "broken.mp4" in out


# --------------------------------------------------------------------------- the program: stdout is the result
def _folder_root(small_demo_root, root):
    import shutil

    for cls in sorted((small_demo_root / "videos" / "test").iterdir())[:3]:
        shutil.copytree(cls, root / cls.name)
    return root


@pytest.mark.integration
def test_eval_stdout_is_json_only_and_best_ranks_the_folder_run(small_demo_root, zsar_home, ray_session, tmp_path, capsys):
    """`zsar eval ... | python -c json.load` (a real pipe; Ray Train, 1 worker), then `zsar best`
    finds the run: `folder`'s only split makes a plain run, ranked by its own metrics."""
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    from zsar.cli import main

    root = _folder_root(small_demo_root, tmp_path / "mine")
    zsar = shlex.quote(str(Path(sys.executable).with_name("zsar")))
    read = shlex.quote("import json,sys; print(json.load(sys.stdin)['mlflow_run_id'])")
    cmd = (f"set -o pipefail; {zsar} eval --method frozen_clip --dataset folder --root {shlex.quote(str(root))} --protocol full "
           f"--workers 1 --set backbone.name=zsar-tiny backbone.pretrained=null 2> {shlex.quote(str(tmp_path / 'err.txt'))} "
           f"| {shlex.quote(sys.executable)} -c {read}")
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=900, env=cli_env())
    err = (tmp_path / "err.txt").read_text()
    assert out.returncode == 0, out.stdout + out.stderr + err[-3000:]
    run_id = out.stdout.strip()
    assert "MLflow store:" in err  # the logs went to stderr
    capsys.readouterr()
    assert main(["best", "--method", "frozen_clip", "--dataset", "folder", "--metric", "top1"]) == 0
    table = capsys.readouterr().out
    first = next(line for line in table.splitlines() if line.strip().startswith("1 "))
    # folder has one split: the eval is a plain run (no parent) and best ranks that run itself
    assert run_id in first and "top1" in first and "parent run" not in table
    assert main(["best", "--method", "frozen_clip", "--dataset", "folder"]) == 2  # hm: not logged by a full run
    assert "--metric hm: no finished frozen_clip run on folder logged it" in capsys.readouterr().err


@pytest.mark.integration  # the program's own streams: needs fresh `zsar` processes
def test_quiet_leaves_the_result_alone_and_verbose_is_accepted_anywhere(small_demo_root, tmp_path):
    root = _folder_root(small_demo_root, tmp_path / "mine")
    loud = run_cli("data", "check", "--dataset", "folder", "--root", str(root))
    quiet = run_cli("data", "check", "--dataset", "folder", "--root", str(root), "--quiet")
    assert loud.returncode == quiet.returncode == 0, loud.stderr + quiet.stderr
    assert "[zsar] decoded 9/9 videos" in loud.stderr and quiet.stderr == ""
    assert quiet.stdout == loud.stdout and "9 videos checked by decoding: 9 decode, 0 unreadable" in quiet.stdout
    error = run_cli("-q", "data", "check", "--dataset", "folder", "--root", str(tmp_path / "nowhere"))
    assert error.returncode == 2 and error.stderr.startswith("zsar: error: dataset root not found") and not error.stdout
    assert len(error.stderr.strip().splitlines()) == 1 and "Traceback" not in error.stderr
    assert run_cli("-v", "methods").returncode == 0
