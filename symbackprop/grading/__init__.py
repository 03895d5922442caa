"""Homework checking: one answer against the derivation, or a whole class in worker processes.

One module per step: :mod:`.reading` (untrusted text to SymPy, in three steps: :mod:`.spelling`,
textbook spellings and derivation lines into the grammar's form; :mod:`.lexing`, the text checked,
bounded and parsed; :mod:`.building`, the grammar's actions, through the :mod:`.vocabulary` of the
target), :mod:`.prepared` (the target, its answer key and the test networks), :mod:`.targets` (what
an answer is for and its reference numbers), :mod:`.evaluation` (any expression at every test point),
:mod:`.mistakes` (the known mistakes as mutants), :mod:`.judging` (the verdict on one answer),
:mod:`.through_time` (a recurrent network's targets: BPTT's delta and the recurrent weights' gradients),
:mod:`.convolutional` (a conv network's: grad_kernel and delta_conv_input by position, and the worked
example's kernel and bias gradients as numbers),
:mod:`.workers` (answers in killable processes: check, grade), :mod:`.reports` (CSV in, reports out).

How an answer is decided (the README's "Checking homework" says the same):

* The reference numbers come from the derivation itself (:func:`derive` and the NumPy code
  of :mod:`numerics`): for a generic target, on two layered networks of different widths
  and depths built from the spec's activations and loss (2-3-2 and 3-4-4-3; hidden targets
  at every hidden layer), at four random points each, with the unit, the unit feeding it
  and the learning rate drawn at random per point; for a concrete target, on the spec's
  network at its worked example and at random points, with the spec's learning rate.
* A recurrent network's targets (delta_hidden_bptt, grad_r, grad_r[h][i][j]) are graded the same
  way on unrolled networks (2-3-2 over 5 steps and 2-3-3-2 over 6, or the spec's), with the step t bound
  too (the last step T for a gradient) and every sum over t running over the steps; a gradient has
  no step of its own, so its sum over t may not end at t.
* The answer is evaluated at the same points with the index letters bound to the same
  units and each sum running over the layer of its index, so a sum written for one width
  cannot pass by luck.  Quantities an answer names that the network lacks (the target of a
  hidden unit, a weight with its indices swapped) get fixed random values, so they are
  defined and wrong.
* Equal means |answer - reference| <= 1e-8 max(|answer|, |reference|) + 1e-12 at every
  point: float64 evaluation of formulas this size is accurate to about 1e-14, while every
  real mistake is off by O(1) relatively at a random point.  A number-only answer to a
  concrete target is compared with the worked example (a sheet's numbers) at the four significant
  digits asked: within one unit of the fourth, written with four unless it rounds to the value.
* A derivation of several lines is checked line by line: every line must equal the target.
* A wrong answer is compared with mutants of the reference: the known mistakes applied to
  it (table :data:`.mistakes.MISTAKES`), alone and in pairs; equal to a mutant at every point means
  the student made that mistake.  Otherwise it "differs at" the point shown.
"""
from .judging import Verdict, check_prepared
from .mistakes import MISTAKES
from .prepared import Prepared, Target
from .reading import ExpressionError, read_answer
from .reports import read_submissions, report_csv, report_markdown, write_report
from .targets import GENERIC_TARGETS, RECURRENT_TARGETS, parse_target, prepare
from .vocabulary import Vocabulary
from .workers import SECONDS_PER_ANSWER, check, grade, grade_prepared

__all__ = ["GENERIC_TARGETS", "MISTAKES", "RECURRENT_TARGETS", "SECONDS_PER_ANSWER", "ExpressionError", "Prepared",
           "Target", "Verdict", "Vocabulary", "check", "check_prepared", "grade", "grade_prepared", "parse_target", "prepare", "read_answer",
           "read_submissions", "report_csv", "report_markdown", "write_report"]
