"""Derivation and verification time against parameter count, with the naive baseline.

Run: python bench/derive.py   (prints a table; figures are ratios in the same run)

The baseline is what a user does by hand: ``sympy.diff`` of the fully expanded loss
for every parameter.  It only runs for the small shapes, where it finishes.
"""
import time

import sympy as sp

import symbackprop as sb

SHAPES = [(2, 3, 1), (4, 8, 4), (8, 16, 8), (4, 16, 16, 16, 16, 4), (784, 30, 10)]
NAIVE = {(2, 3, 1), (4, 8, 4)}


def seconds(function, *arguments, **options):
    start = time.perf_counter()
    result = function(*arguments, **options)
    return time.perf_counter() - start, result


def _naive(net):
    """What a user does by hand: expand the loss, differentiate it by every parameter."""
    loss = net.expanded(net.loss_expression)
    return [sp.diff(loss, p) for p in net.parameters]


def main():
    print(f"{'shape':<22} {'params':>7} {'derive s':>9} {'verify s':>9} {'naive s':>9} {'naive/derive':>13}")
    for shape in SHAPES:
        net = sb.layered(shape, "sigmoid", "half_sse")
        derive_time, derivation = seconds(sb.derive, net)
        verify_time, report = seconds(sb.verify, net, derivation, brute_force=False)
        assert report.ok
        naive = ""
        ratio = ""
        if shape in NAIVE:
            naive_time, _ = seconds(_naive, net)
            naive, ratio = f"{naive_time:9.2f}", f"{naive_time / derive_time:13.1f}"
        name = "-".join(map(str, shape))
        print(f"{name:<22} {len(net.parameters):>7} {derive_time:>9.2f} {verify_time:>9.2f} {naive:>9} {ratio:>13}")


if __name__ == "__main__":
    main()
