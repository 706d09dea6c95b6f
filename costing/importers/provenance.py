"""Where an imported file came from: one provenance object for every importer.

Each importer's ``import_edition`` takes a :class:`Provenance` and turns it into the
manifest's source record with :meth:`Provenance.source`, which adds the file's name and
sha256 and fills the fields left None with the importer's defaults.

>>> p = Provenance(publisher="NHS Digital", obtained_from="STAPM/hesr : data/trimpoints.rda")
>>> p.title is None, p.licence is None   # the importer's title; the Open Government Licence
(True, True)
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Literal

from costing.tables import Source

__all__ = ["Provenance", "USER_SUPPLIED"]

USER_SUPPLIED = "supplied by the user"


@dataclass(frozen=True)
class Provenance:
    """The provenance of an imported file, recorded in its edition's manifest.

    Attributes:
        title: title of the publication (None: the importer's default for the kind).
        publisher: who published it (None: the importer's default, if it has one).
        url: its publication page (likewise).
        obtained_from: where this copy came from (``repository:path``, commit); None:
            "supplied by the user".
        published: publication date.
        licence: None: the Open Government Licence v3.0.
        form: "original" (the publisher's own file) or "extract" (another project's faithful
            copy of the published table, made by ``obtained_from``); None: not stated.
        rounding: how the copy rounds the published figures (e.g. "whole pounds"), if it does.
    """

    title: str | None = None
    publisher: str | None = None
    url: str | None = None
    obtained_from: str | None = None
    published: dt.date | None = None
    licence: str | None = None
    form: Literal["original", "extract"] | None = None
    rounding: str | None = None

    def source(self, path: str | os.PathLike[str], *, title: str,
               publisher: str | None = None, url: str | None = None) -> Source:
        """The manifest's source record of ``path``: its name and sha256 with this
        provenance; ``title``, ``publisher`` and ``url`` are the importer's defaults for
        the fields this provenance leaves None."""
        return Source.of_file(path, title=self.title or title, url=self.url or url,
                              publisher=self.publisher or publisher,
                              obtained_from=self.obtained_from or USER_SUPPLIED,
                              licence=self.licence, form=self.form, rounding=self.rounding)
