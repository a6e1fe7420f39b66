"""Local state is the project's own and private; a local server's s3:// capture never reaches AWS."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlops_kit import paths
from mlops_kit.cli import main


def _project(folder: Path) -> Path:
    folder.mkdir()
    (folder / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    return folder


def test_each_project_keeps_its_own_private_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLOPS_STATE_DIR")
    first, second = _project(tmp_path / "one"), _project(tmp_path / "two")
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(first))
    assert paths.state_dir() == first / ".mlops"
    monkeypatch.setenv("MLOPS_PROJECT_DIR", str(second))
    assert paths.runs_dir() == second / ".mlops" / "runs"
    for folder in (first / ".mlops", second / ".mlops"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_shared_state_folder_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "state"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    monkeypatch.setenv("MLOPS_STATE_DIR", str(folder))
    assert paths.state_dir() == folder and stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_serve_refuses_s3_capture_without_an_emulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    code = main(
        ["serve", "--model-dir", str(model), "--capture-to", "s3://mlops-kit-local-capture-123456789012/x"]
    )
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "s3:// capture from a local server goes to the emulator, and none is running" in err
