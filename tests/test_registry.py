import pytest

from zsar.errors import ZsarError
from zsar.registry import DATASETS, METHODS, Registry


def test_unknown_method_lists_known_names():
    with pytest.raises(ZsarError) as e:
        METHODS.get("vifi_clip")
    msg = str(e.value)
    assert "vifi_clip" in msg and "did you mean 'vificlip'" in msg
    for name in ("frozen_clip", "vificlip"):
        assert name in msg


def test_unknown_dataset_lists_known_names():
    with pytest.raises(ZsarError, match="known: .*demo.*folder"):
        DATASETS.get("kinetics-400")


def test_register_sets_name_and_refuses_a_second_class_under_one_name():
    reg = Registry("thing")

    @reg.register("a")
    class A:
        pass

    assert reg.get("a") is A and A.name == "a"
    with pytest.raises(ValueError):

        @reg.register("a")
        class B:
            pass


def test_cli_lists_one_line_each(capsys):
    from zsar.cli import main

    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == METHODS.names()
    assert main(["datasets"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()] == DATASETS.names()
