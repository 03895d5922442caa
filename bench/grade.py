"""Batch grading throughput: 1,000 mixed answers (right, wrong, unreadable) through ``grade``.

Run: python bench/grade.py [ANSWERS] [WORKERS]   (prints answers per second; target >= 100/s on 2 cores)
Preparing the references (derivations of the test networks) is timed separately: it is done
once per target, whatever the class size.
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


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
    spec = sb.from_dict(sb.spec.DEFAULT)
    rows = [{"id": str(n), "target": ANSWERS[n % len(ANSWERS)][0], "answer": ANSWERS[n % len(ANSWERS)][1]}
            for n in range(count)]
    start = time.perf_counter()
    for target in {row["target"] for row in rows}:
        grading.prepare(spec.network, target, "default", spec.values, spec.learning_rate)
    prepared = time.perf_counter() - start
    start = time.perf_counter()
    verdicts = grading.grade(spec, rows, workers=workers)
    elapsed = time.perf_counter() - start
    counts = {v: sum(x.verdict == v for x in verdicts) for v in ("correct", "incorrect", "cannot read")}
    print(f"prepare {len({r['target'] for r in rows})} targets: {prepared:.1f} s (once per batch)")
    print(f"grade {count} answers (including that preparation): {elapsed:.1f} s = {count / elapsed:.0f} answers/s; "
          f"{counts}")


if __name__ == "__main__":
    main()
