import pytest

from zsar.errors import ZsarError
from zsar.registry import DATASETS, METHODS, Registry
from conftest import run_cli


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


def test_cli_lists_one_line_each():
    methods = run_cli("methods")
    assert methods.returncode == 0
    lines = methods.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == METHODS.names()
    datasets = run_cli("datasets")
    assert [line.split()[0] for line in datasets.stdout.strip().splitlines()] == DATASETS.names()
