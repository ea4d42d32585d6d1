"""The `platform/` folder is installed as `zsar` and must never shadow the standard library's
`platform` module, whichever way the code is run."""

import subprocess
import sys

import pytest

from conftest import REPO, run_cli

CHECK = "import platform, ray, mlflow, torch; platform.system(); import zsar.cli; print(platform.__file__)"


@pytest.mark.integration  # fresh interpreters, as a user starts them
@pytest.mark.parametrize("cwd", [REPO, REPO / "tests"])
def test_stdlib_platform_not_shadowed(cwd):
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "/platform/" not in out.stdout.replace("\\", "/")  # the stdlib's platform.py, not our folder


@pytest.mark.integration  # fresh interpreters, as a user starts them
@pytest.mark.parametrize("cwd", [REPO, REPO / "tests"])
def test_pytest_collects_from_anywhere(cwd):
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", str(REPO / "tests" / "test_layout.py")],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_stdlib_platform_not_shadowed" in out.stdout


@pytest.mark.integration  # fresh interpreters, as a user starts them
def test_python_m_and_cli_from_repo_root():
    out = subprocess.run([sys.executable, "-m", "zsar.cli", "methods"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "frozen_clip" in out.stdout
    cli = run_cli("datasets", cwd=REPO)
    assert cli.returncode == 0 and "demo" in cli.stdout


def test_ray_worker_sees_stdlib_platform(ray_session):
    import ray

    @ray.remote
    def probe():
        import platform

        import zsar.registry

        return platform.system(), platform.__file__, zsar.registry.__name__

    system, path, mod = ray.get(probe.remote())
    assert system and "/platform/" not in path.replace("\\", "/")
    assert mod == "zsar.registry"


def test_every_package_folder_is_installed():
    """pyproject lists packages explicitly (platform/ maps to zsar): a new folder must be added."""
    import tomllib

    packages = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {"zsar"} | {
        "zsar." + ".".join(p.relative_to(REPO / "platform").parts)
        for p in (REPO / "platform").rglob("*")
        if p.is_dir() and any(p.glob("*.py")) and "__pycache__" not in p.parts
    }
    folders.add("zsar.methods")
    assert folders <= packages, f"add to pyproject [tool.setuptools] packages: {sorted(folders - packages)}"
