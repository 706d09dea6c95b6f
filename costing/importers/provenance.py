"""Where an imported file came from: one provenance object for every importer.

Each importer's ``import_edition`` takes a :class:`Provenance` and turns it into the
manifest's source record with :meth:`Provenance.source` (the file's name and sha256 added).

>>> p = Provenance(title="HRG4+ 2017/18 trim points", publisher="NHS Digital")
>>> p.obtained_from is None, p.licence is None   # defaults: "supplied by the user", OGL v3.0
(True, True)
>>> p.with_defaults(title="ignored", obtained_from="STAPM/hesr").title
'HRG4+ 2017/18 trim points'
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, fields, replace

from costing.tables import Source

__all__ = ["Provenance", "USER_SUPPLIED"]

USER_SUPPLIED = "supplied by the user"


@dataclass(frozen=True)
class Provenance:
    """The provenance of an imported file, recorded in its edition's manifest.

    Attributes:
        title: title of the publication (None: the importer's default for the kind).
        publisher: who published it.
        url: its publication page.
        obtained_from: where this copy came from (``repository:path``, commit); None:
            "supplied by the user".
        published: publication date.
        licence: None: the Open Government Licence v3.0.
    """

    title: str | None = None
    publisher: str | None = None
    url: str | None = None
    obtained_from: str | None = None
    published: dt.date | None = None
    licence: str | None = None

    def with_defaults(self, **defaults: str | dt.date | None) -> Provenance:
        """This provenance with each field it leaves None taken from ``defaults``."""
        names = {f.name for f in fields(self)}
        unknown = set(defaults) - names
        if unknown:
            raise TypeError(f"not provenance fields: {sorted(unknown)}")
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})

    def source(self, path: str | os.PathLike[str], *, title: str,
               publisher: str | None = None, url: str | None = None) -> Source:
        """The manifest's source record of ``path``: its name and sha256 with this
        provenance; ``title``, ``publisher`` and ``url`` are the importer's defaults for
        the fields this provenance leaves None."""
        p = self.with_defaults(title=title, publisher=publisher, url=url)
        return Source.of_file(path, title=p.title or title, url=p.url, publisher=p.publisher,
                              obtained_from=p.obtained_from or USER_SUPPLIED, licence=p.licence)
