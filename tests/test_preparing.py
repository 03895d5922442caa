"""A class's questions prepared at once (grading.targets.prepare_many, exercises.preparing): the
same references, mutants and worked-example values as preparing each student's target alone
(the per-student path is the witness), and read back from the disk cache."""
import numpy as np
import pytest

import symbackprop as sb
from symbackprop import grading
from symbackprop.exercises import preparing
from symbackprop.grading import targets
from symbackprop.grading.targets import prepare_many


@pytest.fixture(scope="module")
def made():
    spec = sb.compact("2-3-2-2", "tanh,sigmoid,identity", "half_sse")
    return sb.exercises(spec, students=[f"s{n}" for n in range(9)], seed=7,
                        questions="delta_hidden,delta,grad_w,update_w,grad_b")


def _same(together, alone):
    assert together.target == alone.target
    np.testing.assert_allclose(together.reference, alone.reference, rtol=1e-12)
    assert [m[0] for m in together.mutants] == [m[0] for m in alone.mutants]
    for (_, _, x), (_, _, y) in zip(together.mutants, alone.mutants):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
    assert together.example == pytest.approx(alone.example, rel=1e-12)
    assert [(m[0], pytest.approx(m[2], rel=1e-12)) for m in together.example_mutants] == \
        [(m[0], m[2]) for m in alone.example_mutants]
    assert together.cases.labels == alone.cases.labels
    for symbol, values in alone.cases.symbols.items():
        np.testing.assert_array_equal(together.cases.symbols[symbol], values)


def test_a_question_prepared_for_the_class_equals_each_student_prepared_alone(made):
    levels = set()
    for question in made.questions[1:]:
        specs = [made.spec(v) for v in made.variants]
        names = [v.targets[question.id] for v in made.variants]
        together = prepare_many(specs[0].network, names, made.notation_object, [s.values for s in specs],
                                specs[0].learning_rate)
        for name, spec, one in zip(names, specs, together):
            _same(one, grading.prepare(spec.network, name, made.notation_object, spec.values, spec.learning_rate))
            levels.add((question.kind, one.target.concrete[0]))
    assert len({level for kind, level in levels if kind == "update_w"}) > 1  # targets at several layers at once


def test_a_wrong_number_is_diagnosed_against_its_own_students_values(made):
    rows, expected = [], []
    for variant in made.variants:
        spec = made.spec(variant)
        alone = grading.prepare(spec.network, variant.targets["q2"], made.notation_object, spec.values,
                                spec.learning_rate)
        names, _, value = alone.example_mutants[0]
        rows.append({"student": variant.student, "question": "q2", "answer": f"{value:.10g}"})
        expected.append(" and ".join(names))
    verdicts = sb.exercises.grade(made, rows, workers=1)
    assert [v.verdict for v in verdicts] == ["incorrect"] * len(rows)
    assert [v.message.rstrip(".").lower() for v in verdicts] == [e.lower() for e in expected]


def test_a_prepared_set_is_read_back_from_the_disk_cache(made, monkeypatch):
    first = preparing.prepared(made)
    assert set(first) == {question.id for question in made.questions if not question.numeric} | {
        f"{v.student}\0{q.id}" for v in made.variants for q in made.questions if q.numeric}

    def refuse(*args, **kwargs):
        raise AssertionError("prepared again instead of read from the cache")

    monkeypatch.setattr(targets, "_prepare_alike", refuse)  # under prepare and prepare_many
    again = preparing.prepared(made)
    assert again.keys() == first.keys()
    np.testing.assert_array_equal(again["s3\0q2"].reference, first["s3\0q2"].reference)


def test_a_target_that_cannot_be_prepared_costs_its_own_row_only():
    spec = sb.compact("2-3-1", "sigmoid,identity", "half_sse")
    done = prepare_many(spec.network, ["delta[0][1]", "delta[5][0]", "grad_w[0][1][2]"], "default",
                        [spec.values] * 3)
    assert isinstance(done[0], targets.Prepared) and isinstance(done[2], targets.Prepared)
    assert isinstance(done[1], sb.SpecError) and "outside the network" in str(done[1])
