"""Reference data shipped with zsar (class lists, protocol lists, descriptions); see PROVENANCE.md."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resource(*parts: str) -> Path:
    """The path of a shipped file or folder, e.g. resource("labels", "ucf101.txt")."""
    return ROOT.joinpath(*parts)
