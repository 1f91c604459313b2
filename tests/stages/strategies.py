"""Hypothesis strategies shared by the stage-core tests."""

from __future__ import annotations

from hypothesis import strategies as st

from fundmodel.stages import Stage

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
)

json_values = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=70), children, max_size=6)
    ),
    max_leaves=20,
)
"""Any JSON value (plus NaN and infinities, which Python's json module also produces)."""

SEPARATORS = st.sampled_from([" ", "_", "-", "\u00a0", "\u2013", "\u2014", "\u2212", "\t", "  ", "_-", " - "])


@st.composite
def case_and_separator_variants(draw: st.DrawFn, stage: Stage) -> str:
    """A spelling of ``stage``'s canonical name with random case, separators and surrounding space."""
    words = stage.value.split("_")
    cased = ["".join(ch.upper() if draw(st.booleans()) else ch.lower() for ch in word) for word in words]
    joined = cased[0]
    for word in cased[1:]:
        joined += draw(SEPARATORS) + word
    padding = st.sampled_from(["", " ", "  ", "\t", "\u00a0"])
    return draw(padding) + joined + draw(padding)
