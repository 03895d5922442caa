"""The comparison every verdict rests on: close() and its one-pass form close_to_any()."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from symbackprop.grading.evaluation import close, close_to_any

SPECIAL = st.sampled_from([0.0, -0.0, 1.0, 1.0 + 1e-12, 1.0 + 1e-6, np.inf, -np.inf, np.nan, 1e308, -1e-300])
NUMBER = st.one_of(SPECIAL, st.floats(allow_nan=True, allow_infinity=True, width=64))


def test_close_by_hand():
    assert close([1.0, 2.0], [1.0 + 1e-10, 2.0])
    assert not close([1.0, 2.0], [1.0 + 1e-6, 2.0])
    assert close([np.inf], [np.inf]) and not close([np.inf], [1e300]) and not close([np.nan], [np.nan])


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.lists(NUMBER, min_size=n, max_size=n),
    st.lists(st.lists(NUMBER, min_size=n, max_size=n), min_size=1, max_size=5))))
def test_close_to_any_is_close_to_one_of_the_rows(case):
    x, rows = case
    # nearly-equal rows are the interesting case: add copies of x nudged by less and more than rtol
    rows = rows + [[v * (1 + 1e-10) for v in x], [v * (1 + 1e-6) + 1e-9 for v in x]]
    assert close_to_any(np.array(x), np.array(rows)) == any(close(np.array(x), np.array(r)) for r in rows)
