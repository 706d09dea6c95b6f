"""Shared test fixtures: hypothesis profiles, the shared-data folder, shipped tables.

Hypothesis profiles (choose with COSTING_HYPOTHESIS_PROFILE, default ``ci``):
  ci    derandomized, bounded example counts so the whole suite stays well under 10 minutes
  deep  many more examples, random seeds; also runs tests marked ``slow``
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "deep",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("COSTING_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)

REPO = Path(__file__).resolve().parent.parent
# ../shared/data beside the clone (CI always has it; a user's fresh clone may not).
SHARED_DATA = Path(os.environ.get("COSTING_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PROFILE == "deep":
        return
    skip_slow = pytest.mark.skip(
        reason="slow test: runs only with COSTING_HYPOTHESIS_PROFILE=deep"
    )
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; tests using it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real NHS source files not available at {SHARED_DATA} "
            "(they sit beside the clone in CI; set COSTING_SHARED_DATA to point elsewhere)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def shipped_tables():  # type: ignore[no-untyped-def]
    """The verified shipped TableSet."""
    import costing

    return costing.load_tables()
