"""Reading a data frame out of an R data file (.rds or .rda), for the importers of extracts.

Other projects redistribute some national schedules only as R data files (COSTmos's
``ncc.rda``, the Health Foundation's ``HRGcosts.rds``). pyreadr reads them without R; it
is needed only to rebuild the shipped tables (the ``maintainers`` extra), never at run
time, so it is imported here, when a file is read.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from costing.errors import ImportFormatError

__all__ = ["R_SUFFIXES", "read_r_frame"]

R_SUFFIXES = (".rds", ".rda", ".rdata")


def read_r_frame(path: Path, name: str | None = None) -> pl.DataFrame:
    """The data frame ``name`` of an .rda file, or the one object of an .rds file.

    Args:
        path: The R data file.
        name: The object to read from an .rda file (None: its only object).

    Raises:
        ImportFormatError: pyreadr is not installed, the file is missing or not R data, or
            the object is absent; the message says which and what to do.
    """
    p = Path(path)
    if not p.is_file():
        raise ImportFormatError(f"{p}: no such file")
    try:
        import pyreadr
    except ImportError:
        raise ImportFormatError(
            f"{p.name}: reading R data files needs pyreadr, which rebuilding the shipped tables "
            "uses; install it with: pip install 'costing[maintainers]'"
        ) from None
    try:
        objects = pyreadr.read_r(str(p))
    except Exception as exc:  # pyreadr raises its own error types and LibrdataError
        raise ImportFormatError(f"{p.name}: cannot be read as an R data file ({exc})") from None
    names = list(objects)
    if name is None:
        if len(names) != 1:
            raise ImportFormatError(
                f"{p.name}: holds {len(names)} objects ({', '.join(map(str, names))}); name one")
        key = names[0]
    elif name in objects:
        key = name
    else:
        raise ImportFormatError(
            f"{p.name}: no object {name!r} (it holds {', '.join(map(str, names)) or 'none'})")
    return pl.from_pandas(objects[key])
