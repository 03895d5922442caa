"""Batch grading throughput: 1,000 mixed answers (right, wrong, unreadable) through ``grade``.

Run: python bench/grade.py [ANSWERS] [WORKERS]   (prints answers per second; target >= 100/s on 2 cores)
The total includes preparing each target's reference (derivations of the test networks, once per
target, whatever the class size); the answering rate after it is printed too.
"""
import sys
import time

import symbackprop as sb
from symbackprop import grading

ANSWERS = [
    ("delta_hidden", "\\delta_j = g'(z_j)\\sum_k w_{jk}\\delta_k"),
    ("delta_hidden", "a_j(1 - a_j) * sum(w_jk*delta_k, k)"),
    ("delta_hidden", "g'(z_j)*sum(w_kj*delta_k, k)"),
    ("delta_hidden", "g'(z_j) w_jk delta_k"),
    ("delta_output", "(a_k - t_k) g'(z_k)"),
    ("delta_output", "\\frac{\\partial E}{\\partial a_k} \\sigma'(z_k)"),
    ("delta_output", "(t_k - a_k)"),
    ("grad_w_hidden", "\\frac{\\partial E}{\\partial w_{ij}} = \\delta_j a_i"),
    ("grad_w_output", "delta_k a_k"),
    ("update_w_hidden", "\\Delta w_{ij} = -\\eta \\delta_j a_i"),
    ("update_w_output", "w_jk - eta*delta_k*a_j"),
    ("grad_b_hidden", "delta_j"),
    ("delta_hidden", "__import__('os').system('true')"),
    ("delta_hidden", "g'(z_j)*sum(w_jk*delta_k*(1 + a_k - a_k), k)"),
    ("grad_w[1][2][0]", "delta[1][0]*a[0][2]"),
    ("delta[0][1]", "g'(z[0][1])*w[1][1][0]*delta[1][0]"),
]


def rows_of(count: int) -> list[dict]:
    """``count`` rows cycling through ANSWERS, each with its own spacing and a distinct number
    folded in (times 1), so no two answer texts are equal and no cache helps."""
    rows = []
    for n in range(count):
        target, answer = ANSWERS[n % len(ANSWERS)]
        spaced = answer.replace("*", " " * (n % 3) + "*") + f" * {n + 7}/{n + 7}" * (n % 2)
        rows.append({"id": str(n), "target": target, "answer": spaced})
    return rows


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    spec = sb.from_dict(sb.spec.DEFAULT)
    rows = rows_of(count)
    marks = []
    start = time.perf_counter()
    verdicts = grading.grade(spec, rows, workers=workers, progress=lambda done, total: marks.append(time.perf_counter()))
    elapsed = time.perf_counter() - start
    answering = marks[-1] - marks[0]
    counts = {v: sum(x.verdict == v for x in verdicts) for v in ("correct", "incorrect", "cannot read")}
    print(f"{count} answers, {len({r['target'] for r in rows})} targets, {workers or 'all'} workers: "
          f"{elapsed:.1f} s in all = {count / elapsed:.0f} answers/s "
          f"(references prepared once: {elapsed - answering:.1f} s; then {count / answering:.0f} answers/s); {counts}")


if __name__ == "__main__":
    main()
