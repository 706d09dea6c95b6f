"""cost_by_window_and_audit gives what cost_by_window and audit give separately."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from costing.windows import ASSIGN_RULES, audit, cost_by_window, cost_by_window_and_audit
from tests.property.strategies_windows import Scenario, scenarios


@given(
    scenarios(), st.sampled_from(ASSIGN_RULES), st.sampled_from(["category", "pod"]), st.booleans()
)
def test_one_assignment_gives_both_frames(s: Scenario, assign: str, by: str, wide: bool) -> None:
    kw = {"windows": s.windows, "months": s.months, "assign": assign, "by": by}
    costs, audited = cost_by_window_and_audit(s.priced, s.cohort, wide=wide, **kw)  # type: ignore[arg-type]
    want_costs = cost_by_window(s.priced, s.cohort, wide=wide, **kw)  # type: ignore[arg-type]
    want_audit = audit(s.priced, s.cohort, **kw)  # type: ignore[arg-type]
    assert costs.equals(want_costs) and costs.schema == want_costs.schema
    assert audited.equals(want_audit) and audited.schema == want_audit.schema
