"""``pyplot()`` (matplotlib, imported on first use) and ``save_figure``, the way a figure reaches a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sisrlib.atomic import atomic_output


def pyplot() -> Any:
    """``matplotlib.pyplot`` (matplotlib falls back to the Agg backend by itself when there is no display)."""
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: float = 100, close: bool = True, **kwargs: Any) -> Path:
    """Save ``fig`` to ``path`` atomically (temporary name in the same folder with the same extension, renamed
    on success, removed on failure); the format comes from the extension. ``kwargs`` go to ``savefig``
    (e.g. ``bbox_inches="tight"``). ``close``: close the figure afterwards (also on failure); a notebook that
    still displays it passes ``close=False``."""
    out = Path(path)
    try:
        with atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=dpi, format=out.suffix.lstrip(".") or None, **kwargs)
    finally:
        if close:
            pyplot().close(fig)
    return out
