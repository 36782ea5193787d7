"""Where local paths really lead: nothing outside the landing root is read, nothing outside
the lakehouse root is written or deleted, even when a folder inside a root is a symbolic link.

Standard library only: the Glue job script uses it too.
"""

from __future__ import annotations

from pathlib import Path


class OutsideRootError(Exception):
    """A path inside a root that leads (through a symbolic link) out of it; names the path."""


def leads_outside(path: str | Path, root: str | Path) -> bool:
    """`path`, once every symbolic link on its way is followed, is not under `root` (itself
    resolved). A path that does not exist yet is judged by its existing part."""
    real_root = Path(root).resolve()
    real = Path(path).resolve()
    return real != real_root and real_root not in real.parents


def ensure_inside(path: str | Path, root: str | Path, doing: str) -> None:
    """Refuse (OutsideRootError) to go on `doing` something at `path` when it leads outside
    `root`."""
    if leads_outside(path, root):
        raise OutsideRootError(
            f"refusing to {doing} {path}: it is (or passes through) a symbolic link leading "
            f"outside {root}; remove the link or point it inside that folder")


def ensure_table_inside(location: str | Path, root: str | Path) -> None:
    """Refuse to write a table whose zone folder, table folder, data or metadata folder leads
    outside the lakehouse `root` (checked before anything is written)."""
    table = Path(location)
    for folder in (table.parent, table, table / "data", table / "metadata"):
        ensure_inside(folder, root, "write a table into")
