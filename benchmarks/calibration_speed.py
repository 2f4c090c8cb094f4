"""Speed of the calibration metrics: ECE at 1,000,000 predictions x 10 classes against torchmetrics,
and bootstrap intervals with 1,000 resamples over 100,000 predictions.

ECE and torchmetrics' ``multiclass_calibration_error`` get the same float64 input and are timed
*interleaved* in one process (ours, theirs, ours, theirs, ...), so both see the same machine load;
the ratio printed is the median over repeats of ours / theirs (below 1: this project is faster;
the target is <= 1.0). Lines are ``name seconds=...`` (medians) and ``..._ratio=...``.

    python benchmarks/calibration_speed.py [--rows 1000000] [--classes 10] [--repeats 7]
        [--bootstrap-rows 100000] [--resamples 1000] [--evaluate-rows 10000]
    python benchmarks/calibration_speed.py --smoke     # the same code paths at tiny sizes (a CI check)
"""

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(ours, theirs, repeats: int) -> tuple[float, float, float]:
    """(median seconds of ours, of theirs, median of the per-repeat ratios ours / theirs)."""
    ours(), theirs()  # warm-up: first-touch page faults and lazy imports are not what we measure
    pairs = [(seconds(ours), seconds(theirs)) for _ in range(repeats)]
    return (statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs),
            statistics.median(a / b for a, b in pairs))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--bootstrap-rows", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--evaluate-rows", type=int, default=10_000, help="0 skips the evaluate-module timing")
    parser.add_argument("--smoke", action="store_true",
                        help="a check that the benchmark runs, in seconds: 5,000 rows, 2 repeats, 1,000 bootstrap "
                        "rows x 20 resamples, 500 evaluate rows; its timings mean nothing")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.repeats, args.bootstrap_rows, args.resamples, args.evaluate_rows = 5000, 2, 1000, 20, 500

    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    from mixup_trainer.calibration import (
        aurc,
        bootstrap_calibration_error,
        calibration_report,
        expected_calibration_error,
        smooth_ece,
    )

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(args.rows, args.classes)) * 3.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, args.classes, args.rows)
    t_probs, t_logits, t_labels = torch.from_numpy(probs), torch.from_numpy(logits), torch.from_numpy(labels)
    c = args.classes

    print(f"# {args.rows} x {c}, float64, 15 bins, {args.repeats} interleaved repeats, "
          f"torch threads={torch.get_num_threads()}")
    ours, theirs, ratio = interleaved(lambda: expected_calibration_error(probs, labels),
                                      lambda: multiclass_calibration_error(t_probs, t_labels, c), args.repeats)
    print(f"mixup_trainer_ece seconds={ours:.4f}")
    print(f"torchmetrics seconds={theirs:.4f}")
    print(f"ece_ratio={ratio:.2f}")
    ours, theirs, ratio = interleaved(lambda: expected_calibration_error(logits, labels, from_logits=True),
                                      lambda: multiclass_calibration_error(t_logits, t_labels, c), args.repeats)
    print(f"mixup_trainer_ece_from_logits seconds={ours:.4f}")
    print(f"torchmetrics_from_logits seconds={theirs:.4f}")
    print(f"ece_from_logits_ratio={ratio:.2f}")
    for name, fn in (
        ("mixup_trainer_adaptive_ece", lambda: expected_calibration_error(probs, labels, binning="equal_mass")),
        ("mixup_trainer_classwise_ece", lambda: expected_calibration_error(probs, labels, classwise=True)),
        ("mixup_trainer_calibration_report_from_logits", lambda: calibration_report(logits, labels, from_logits=True)),
        ("mixup_trainer_smooth_ece", lambda: smooth_ece(probs, labels)),
        ("mixup_trainer_aurc", lambda: aurc(probs, labels)),
    ):
        fn()
        print(f"{name} seconds={statistics.median(seconds(fn) for _ in range(3)):.4f}")

    n = args.bootstrap_rows
    for binning in ("equal_width", "equal_mass"):
        run = lambda: bootstrap_calibration_error(  # noqa: E731
            probs[:n], labels[:n], n_resamples=args.resamples, binning=binning)
        print(f"bootstrap_{binning}_{args.resamples}_resamples_{n}_rows seconds={seconds(run):.2f}")

    if args.evaluate_rows:
        from mixup_trainer.evaluation import load_ece

        m = args.evaluate_rows
        metric = load_ece(keep_in_memory=True)
        run = lambda: metric.compute(predictions=probs[:m], references=labels[:m])  # noqa: E731
        run()
        print(f"evaluate_module_{m}_rows seconds={statistics.median(seconds(run) for _ in range(3)):.4f}")


if __name__ == "__main__":
    main()
