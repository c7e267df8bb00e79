"""The installed package on its own: its data folder and the `telic`
command (the program of telic-sim, run in this process). The whole wheel in
a fresh virtual environment is tested by scripts/test_package."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import telic
import telic.cli
from conftest import ROOT

PACKAGE_DATA = Path(telic.__file__).resolve().parent / "data"


def test_the_installed_package_carries_the_shipped_scenes_and_models():
    shipped = sorted(p.name for p in (ROOT / "sim" / "scenarios").glob("*.toml"))
    assert sorted(p.name for p in (PACKAGE_DATA / "sim" / "scenarios").glob("*.toml")) == shipped
    assert (PACKAGE_DATA / "sim" / "assets" / "arm3.urdf").is_file()
    for scene in ("reach", "navigate", "push", "push_pixels"):
        assert (PACKAGE_DATA / "models" / scene / "manifest.toml").is_file(), scene


def test_the_data_folder_is_telic_home_then_a_checkout_then_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("TELIC_HOME", raising=False)
    monkeypatch.chdir(ROOT / "sim" / "src")
    assert Path(telic.data_dir()).resolve() == ROOT
    monkeypatch.chdir(tmp_path)
    assert Path(telic.data_dir()).resolve() == PACKAGE_DATA
    run = telic.run("reach", episodes=1, model="analytic", max_time=0.5)
    assert len(run["episodes"]) == 1
    monkeypatch.setenv("TELIC_HOME", str(ROOT))
    assert Path(telic.data_dir()).resolve() == ROOT
    # A TELIC_HOME without scenes and models is not a data folder.
    monkeypatch.setenv("TELIC_HOME", str(tmp_path))
    assert Path(telic.data_dir()).resolve() == PACKAGE_DATA


def test_the_telic_command_is_the_program(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    assert telic.cli.main(["--version"]) == 0
    assert capfd.readouterr().out.strip() == f"telic {telic.__version__}"
    assert telic.cli.main(["scenes"]) == 0
    assert capfd.readouterr().out.split() == telic.scenes()
    assert telic.cli.main(["run", "no_such_scene"]) == 1
    assert "no such scene or file" in capfd.readouterr().err
    assert telic.cli.main(["no_such_command"]) == 2
    assert "unrecognized subcommand" in capfd.readouterr().err


def test_the_telic_command_gives_back_python_s_interrupt_handler():
    before = signal.getsignal(signal.SIGINT)
    assert telic.cli.main(["scenes"]) == 0
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.skipif(os.name != "posix", reason="the console script's layout is POSIX's")
def test_the_telic_command_is_installed_beside_the_interpreter():
    import sysconfig

    script = Path(sysconfig.get_paths()["scripts"]) / "telic"
    assert script.is_file(), script
