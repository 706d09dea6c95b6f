"""The shipped national tariff editions and their MFF, derived from ../shared/data.

Three public workbooks give four tariff years: the final 2016/17 Annex A, the 2017/18 and
2018/19 Annex B1 published with the statutory consultation (proposed prices: the editions
carry ``status = "consultation"``) and the final 2022/23 Annex A. Each workbook's own MFF
payment index sheet is shipped as the ``mff`` edition of the same year. ``build_shipped``
checks each file's sha256 against the shared data README before importing it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from costing.importers import mff_workbook, tariff_workbook
from costing.importers.provenance import Provenance
from costing.importers.small_tables import checked_shared_file, readme_sha256

__all__ = ["SHIPPED_TARIFFS", "ShippedTariff", "build_shipped"]

CONSULTATION: Final = "consultation"


@dataclass(frozen=True)
class ShippedTariff:
    """One tariff year of a shared workbook, with its provenance."""

    file: str  # relative to the shared data folder
    edition: str
    title: str
    publisher: str
    url: str
    obtained_from: str
    grouper: str | None = None  # only where the workbook states it
    status: str | None = None
    published: dt.date | None = None
    note: str = ""


_W1617: Final = "tariffs/national-tariff-2016-17-annex-a.xlsx"
_W1719: Final = "tariffs/national-tariff-2017-19-consultation-annex-b1.xlsx"
_W2223: Final = "tariffs/national-tariff-2022-23-annex-a.xlsx"
_REPO_1719: Final = "amandatlt/Tariffs-17-18"
_COMMIT_1719: Final = "a2a806357257a7ef1d18499395efee3a58ac9f1c"
_CONSULTATION_NOTE: Final = (
    "Proposed prices published with the statutory consultation (November 2016), not the final "
    "2017/19 Annex A; the final prices may differ."
)

SHIPPED_TARIFFS: Final[tuple[ShippedTariff, ...]] = (
    ShippedTariff(
        file=_W1617, edition="2016-17",
        title="2016/17 National Tariff Payment System, Annex A: National prices and national "
              "tariff workbook",
        publisher="Monitor and NHS England",
        url="https://www.gov.uk/government/publications/national-tariff-payment-system-2016-to-2017",
        obtained_from=f"{_REPO_1719} : Data-Raw/1617_Annex_A_national_prices_and_national_tariff_"
                      f"workbook.xlsx (commit {_COMMIT_1719})",
        grouper="HRG4 2016/17 Local Payment Grouper",
        note="The workbook names its grouper: 'the 2016-17 local payment grouper' (sheet "
             "Contents). Its HRG codes are of the HRG4 design before HRG4+: 13% of its admitted "
             "care HRGs are in the 2014/15 reference costs (HRG4+), 100% of the 2017/18 "
             "tariff's in the 2015/16 ones.",
    ),
    *(
        ShippedTariff(
            file=_W1719, edition=edition,
            title="2017/18 and 2018/19 National Tariff: currencies and prices (Annex B1, "
                  "statutory consultation)",
            publisher="NHS Improvement and NHS England",
            url="https://improvement.nhs.uk/resources/national-tariff-1719/",
            obtained_from=f"{_REPO_1719} : Data-Raw/1718_Annex_B1_-_national_tariff_workbook.xlsx "
                          f"(commit {_COMMIT_1719})",
            status=CONSULTATION,
            note=f"{_CONSULTATION_NOTE} The workbook does not name its HRG4+ grouper.",
        )
        for edition in ("2017-18", "2018-19")
    ),
    ShippedTariff(
        file=_W2223, edition="2022-23",
        title="2022/23 National Tariff Payment System: Annex A - National tariff workbook",
        publisher="NHS England and NHS Improvement",
        url="https://www.england.nhs.uk/publication/past-national-tariffs-documents-and-policies/",
        obtained_from="sanika-kulkarni/Reimbursement_Management : HRG Codes - 22-23NT_Annex-A-"
                      "National-tariff-workbook_Apr22.xlsx (commit "
                      "7f90eaeb2a021ff9cdf11873d8c017486817becf)",
        published=dt.date(2022, 4, 19),
        note="Updated 19 April 2022 (front page). The workbook does not name its HRG4+ grouper.",
    ),
)


def build_shipped(shared_data: Path, into: Path) -> list[Path]:
    """Import every shipped tariff edition and the MFF of the same year (overwriting them).

    Returns:
        The edition folders written.

    Raises:
        ImportFormatError: a source file is missing or its sha256 differs from the README.
    """
    shared_data = Path(shared_data)
    listed = readme_sha256(shared_data)
    written: list[Path] = []
    for s in SHIPPED_TARIFFS:
        path = checked_shared_file(shared_data, s.file, listed)
        provenance = Provenance(title=s.title, publisher=s.publisher, url=s.url,
                                obtained_from=s.obtained_from, published=s.published)
        common = dict(edition=s.edition, into=Path(into), overwrite=True, provenance=provenance,
                      status=s.status)
        written.append(tariff_workbook.import_edition(
            path, hrg_version="HRG4", grouper=s.grouper, illustrative=False,
            notes=[n for n in (s.note,) if n], **common))
        written.append(mff_workbook.import_edition(path, **common))
    return written
