"""Time ECE on 1,000,000 predictions x 10 classes: this project's numpy version vs torchmetrics.

Prints one `name seconds=...` line per measurement (median of --repeats runs, after one warm-up),
then `ratio=torchmetrics/mixup_trainer_ece` (above 1: this project is faster). Both get the same
float64 probabilities (and then the same float64 logits). The `evaluate` module is timed on a smaller
input (--evaluate-rows), because it first writes the predictions through Arrow, which dominates.

    python benchmarks/calibration_speed.py [--rows 1000000] [--classes 10] [--repeats 5]
"""

import argparse
import os
import statistics
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def median_seconds(fn, repeats):
    fn()  # warm-up: first-touch page faults and lazy imports are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--evaluate-rows", type=int, default=10_000, help="0 skips the evaluate-module timing")
    args = parser.parse_args()

    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    from mixup_trainer.calibration import calibration_report, expected_calibration_error

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(args.rows, args.classes)) * 3.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, args.classes, args.rows)
    t_probs, t_logits, t_labels = torch.from_numpy(probs), torch.from_numpy(logits), torch.from_numpy(labels)

    threads = torch.get_num_threads()
    print(f"# {args.rows} x {args.classes}, float64, 15 bins, median of {args.repeats}, torch threads={threads}")
    ours = median_seconds(lambda: expected_calibration_error(probs, labels), args.repeats)
    theirs = median_seconds(lambda: multiclass_calibration_error(t_probs, t_labels, args.classes), args.repeats)
    print(f"mixup_trainer_ece seconds={ours:.3f}")
    print(f"torchmetrics seconds={theirs:.3f}")
    print(f"ratio={theirs / ours:.2f}")
    torch.set_num_threads(1)  # numpy here runs on one core; torch uses all of them by default
    theirs_1 = median_seconds(lambda: multiclass_calibration_error(t_probs, t_labels, args.classes), args.repeats)
    torch.set_num_threads(threads)
    print(f"torchmetrics_1_thread seconds={theirs_1:.3f}")
    ours_logits = median_seconds(lambda: expected_calibration_error(logits, labels, from_logits=True), args.repeats)
    theirs_logits = median_seconds(lambda: multiclass_calibration_error(t_logits, t_labels, args.classes), args.repeats)
    report = median_seconds(lambda: calibration_report(logits, labels, from_logits=True), args.repeats)
    print(f"mixup_trainer_ece_from_logits seconds={ours_logits:.3f}")
    print(f"torchmetrics_from_logits seconds={theirs_logits:.3f}")
    print(f"mixup_trainer_calibration_report_from_logits seconds={report:.3f}")

    if args.evaluate_rows:
        from mixup_trainer.evaluation import load_ece

        n = args.evaluate_rows
        metric = load_ece(keep_in_memory=True)
        rows = median_seconds(lambda: metric.compute(predictions=probs[:n], references=labels[:n]), args.repeats)
        print(f"evaluate_module_{n}_rows seconds={rows:.3f}")


if __name__ == "__main__":
    main()
