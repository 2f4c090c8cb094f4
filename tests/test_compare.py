"""Comparison mode (``--compare``): a tiny random BERT, baseline and Manifold MixUp x 2 seeds x 2 epochs
through run_glue_mixup.py; the report's numbers are checked against each run's own files."""

import json
import math
import shutil
import statistics
import subprocess
import sys

import pytest
from test_run_scripts import ENV, REPO  # tiny_bert, sst2_sample_dir: fixtures of conftest.py
from testing_utils import hold_lock

from mixup_trainer.compare import mean_se

METHODS, SEEDS = ("none", "manifold"), (1, 2)


def compare_argv(out, model, data_dir):
    return ["--task", "sst2", "--data_dir", str(data_dir), "--model_name_or_path", model,
            "--compare", "manifold", "--compare_seeds", "1,2", "--max_train_samples", "32", "--max_eval_samples", "40",
            "--num_train_epochs", "2", "--learning_rate", "1e-3", "--max_seq_length", "64", "--output_dir", str(out)]


def run_compare(out, model, data_dir):
    command = [sys.executable, "run_glue_mixup.py", *compare_argv(out, model, data_dir)]
    proc = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def comparison(tiny_bert, sst2_sample_dir, tmp_path_factory):
    """The comparison on the first 512 SST-2 training rows (sst2_sample_dir): each run samples its 32 from them."""
    out = tmp_path_factory.mktemp("compare")
    return out, run_compare(out, tiny_bert, sst2_sample_dir)


def own_files(out, method, seed):
    """(all_results.json, last evaluation in trainer_state.json) of one run, read directly."""
    run = out / f"{method}-seed{seed}"
    evals = [h for h in json.loads((run / "trainer_state.json").read_text())["log_history"] if "eval_loss" in h]
    return json.loads((run / "all_results.json").read_text()), evals[-1]


def assert_same_runs(folder, reference):
    """Every run in ``folder`` has the numbers of the same run in ``reference`` (the uninterrupted comparison)."""
    for method in METHODS:
        for seed in SEEDS:
            ours, theirs = own_files(folder, method, seed)[0], own_files(reference, method, seed)[0]
            for key in ("eval_accuracy", "eval_loss", "eval_ece", "best_epoch"):
                assert ours[key] == pytest.approx(theirs[key], abs=1e-6), (method, seed, key)


def expected_stat(values):
    se = statistics.stdev(values) / math.sqrt(len(values))
    return {"mean": pytest.approx(statistics.fmean(values), abs=1e-12), "se": pytest.approx(se, abs=1e-12),
            "n": len(values)}


def test_mean_se_arithmetic():
    mean, se = mean_se([1.0, 2.0, 3.0, 4.0])  # s.d. = sqrt(5/3); s.e. = s.d. / 2
    assert mean == 2.5 and se == pytest.approx(math.sqrt(5 / 3) / 2)
    assert mean_se([0.25]) == (0.25, None)


@pytest.mark.slow
def test_report_numbers_are_the_runs_numbers(comparison):
    out, stdout = comparison
    report = json.loads((out / "comparison.json").read_text())
    assert report["methods"] == list(METHODS) and report["seeds"] == list(SEEDS)
    keys = ["eval_accuracy", "eval_loss", "eval_ece", "eval_overconfidence", "eval_nll", "eval_aurc", "eval_augrc"]
    assert list(report["columns"]["best"]) == keys and list(report["columns"]["last"]) == keys
    runs = {(m, s): own_files(out, m, s) for m in METHODS for s in SEEDS}
    for where, index in (("best", 0), ("last", 1)):
        for key in keys:
            for method in METHODS:
                values = [runs[method, s][index][key] for s in SEEDS]
                assert report["summary"][where]["mean"][method][key] == expected_stat(values), (where, key, method)
            diffs = [runs["manifold", s][index][key] - runs["none", s][index][key] for s in SEEDS]
            assert report["summary"][where]["paired"]["manifold"][key] == expected_stat(diffs), (where, key)
    assert "none" not in report["summary"]["best"]["paired"]
    for (method, seed), (best, last) in runs.items():
        assert last["epoch"] == 2 and best["best_epoch"] in (1, 2)
        # the signed gap is what it says: mean top-label confidence − accuracy, from the run's predictions
        predictions = (out / f"{method}-seed{seed}" / "eval_predictions.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in predictions]
        assert best["eval_overconfidence"] == pytest.approx(
            statistics.fmean(max(r["probs"]) for r in rows) - best["eval_accuracy"], abs=1e-9)
        # for each seed every method trained on the same sample (the sample seed is the run's seed)
        assert f"| training examples | 32 of 512 (random sample, seed {seed}) |" in \
            (out / f"{method}-seed{seed}" / "README.md").read_text()
    # the markdown shows the same numbers
    text = (out / "comparison.md").read_text()
    stat = report["summary"]["best"]["mean"]["none"]["eval_loss"]
    assert "| none | 2 | " in text and f"{stat['mean']:.4f} ± {stat['se']:.4f}" in text
    stat = report["summary"]["last"]["paired"]["manifold"]["eval_ece"]
    assert "| manifold − none | 2 | " in text and f"{stat['mean']:+.4f} ± {stat['se']:.4f}" in text
    for name in ("test_loss.png", "reliability.png", "risk_coverage.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 300_000
        assert f"]({name})" in text


@pytest.mark.slow
def test_ensemble_rows_are_the_seeds_mean_probabilities_scored(comparison):
    """summary.ensemble.<method> equals, to 1e-9, the seeds' eval_predictions.jsonl averaged per example
    and scored by hand (tests/ensemble_oracle.py: accuracy, NLL, 15-bin ECE, signed gap, AURC)."""
    from ensemble_oracle import hand_ensemble

    out, _ = comparison
    report = json.loads((out / "comparison.json").read_text())
    text = (out / "comparison.md").read_text()
    assert "## Ensemble of 2 seeds" in text and "reliability" in report["plots"]
    for method in METHODS:
        expected = hand_ensemble([out / f"{method}-seed{s}" for s in SEEDS])
        got = report["summary"]["ensemble"][method]
        assert got["members"] == 2 and got["eval_samples"] == 40
        for key, value in expected.items():
            assert got[f"eval_{key}"] == pytest.approx(value, abs=1e-9), (method, key)
        assert got["eval_loss"] == pytest.approx(expected["nll"], abs=1e-9)
        assert f"| {method} | 2 | {got['eval_accuracy']:.4f} | {got['eval_loss']:.4f} | {got['eval_ece']:.4f} |" in text


@pytest.mark.slow
def test_a_method_with_one_seed_has_no_ensemble_row(comparison, tmp_path):
    from mixup_trainer.compare import _load, write_report
    from mixup_trainer.tasks import get_task

    out, _ = comparison
    for method in METHODS:
        shutil.copytree(out / f"{method}-seed1", tmp_path / f"{method}-seed1",
                        ignore=shutil.ignore_patterns("*.safetensors", "checkpoint-*"))
    records = [_load(dict(method=m, seed=1, dir=tmp_path / f"{m}-seed1")) for m in METHODS]
    report = write_report(tmp_path, get_task("sst2"), records, list(METHODS), [1], 15)
    assert "ensemble" not in report["summary"] and "Ensemble" not in (tmp_path / "comparison.md").read_text()


@pytest.mark.slow
def test_rerun_of_a_finished_comparison_adds_the_ensemble_rows_without_training(comparison, tiny_bert, sst2_sample_dir):
    out, _ = comparison
    models = {p: p.stat().st_mtime_ns for p in out.glob("*-seed*/model.safetensors")}
    report = json.loads((out / "comparison.json").read_text())
    del report["summary"]["ensemble"]  # a report written before the ensemble rows existed
    (out / "comparison.json").write_text(json.dumps(report))
    (out / "comparison.md").write_text("old report\n")
    stdout = run_compare(out, tiny_bert, sst2_sample_dir)
    assert "4 of 4 runs already finished" in stdout and "[compare] 0 run(s) trained here in" in stdout
    assert set(json.loads((out / "comparison.json").read_text())["summary"]["ensemble"]) == set(METHODS)
    assert "## Ensemble of 2 seeds" in (out / "comparison.md").read_text()
    assert len(models) == 4 and models == {p: p.stat().st_mtime_ns for p in models}


@pytest.mark.slow
def test_progress_lines_not_a_log_wall(comparison):
    _, stdout = comparison
    for i, (seed, method) in enumerate(((s, m) for s in SEEDS for m in METHODS), 1):
        for epoch in (1, 2):
            assert f"[compare] run {i}/4 {method} seed {seed}: epoch {epoch}/2  loss " in stdout
    assert "***** train metrics *****" not in stdout and "{'loss'" not in stdout
    assert stdout.index("[compare] 4 run(s) trained here in") < stdout.index("# MixUp comparison: sst2, none vs manifold")


@pytest.mark.slow
def test_second_invocation_redoes_only_the_missing_run(comparison, tiny_bert, sst2_sample_dir):
    out, _ = comparison
    before = {(m, s): (out / f"{m}-seed{s}" / "all_results.json").stat().st_mtime_ns for m in METHODS for s in SEEDS}
    old = own_files(out, "manifold", 2)[0]
    shutil.rmtree(out / "manifold-seed2")  # as if killed before that run began
    stdout = run_compare(out, tiny_bert, sst2_sample_dir)
    assert stdout.count("finished before (all_results.json), not redone") == 3
    assert "run 4/4 manifold seed 2: epoch 2/2" in stdout and "run 1/4 none seed 1: epoch" not in stdout
    for key, mtime in before.items():
        if key != ("manifold", 2):
            assert (out / f"{key[0]}-seed{key[1]}" / "all_results.json").stat().st_mtime_ns == mtime, key
    new = own_files(out, "manifold", 2)[0]  # the same seed gives the same run
    for key in ("eval_accuracy", "eval_loss", "eval_ece"):
        assert new[key] == pytest.approx(old[key], abs=1e-6)


@pytest.mark.slow
def test_killed_comparison_resumes_to_the_same_numbers(comparison, tiny_bert, sst2_sample_dir, tmp_path, monkeypatch,
                                                       capsys):
    """Killed just after run 2's first checkpoint, the comparison resumes that run from it (run 1 is not
    redone) and ends with the numbers of the uninterrupted comparison."""
    from mixup_trainer import compare as compare_module
    from mixup_trainer.cli import main

    class Killed(Exception):
        pass

    def kill_at_epoch_1(args, state, control, **kwargs):
        if state.epoch == 1:
            raise Killed

    progress_callback = compare_module._progress_callback

    def dying(label, clock):
        callback = progress_callback(label, clock)
        if label.startswith("run 2/4 "):
            callback.on_save = kill_at_epoch_1
        return callback

    monkeypatch.setattr(compare_module, "_progress_callback", dying)
    with pytest.raises(Killed):
        main(compare_argv(tmp_path, tiny_bert, sst2_sample_dir))
    left = tmp_path / "manifold-seed1"
    assert not (left / "all_results.json").exists() and [p.name for p in left.glob("checkpoint-*")] == ["checkpoint-4"]
    finished = (tmp_path / "none-seed1" / "all_results.json").stat().st_mtime_ns
    monkeypatch.undo()
    capsys.readouterr()
    main(compare_argv(tmp_path, tiny_bert, sst2_sample_dir))
    stdout = capsys.readouterr().out  # run 2 goes on from its epoch-1 checkpoint
    assert "run 2/4 manifold seed 1: epoch 2/2" in stdout and "run 2/4 manifold seed 1: epoch 1/2" not in stdout
    size = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert f"[compare] {tmp_path} holds {size / 1e6:.0f} MB" in stdout  # what the comparison leaves on disk
    assert (tmp_path / "none-seed1" / "all_results.json").stat().st_mtime_ns == finished
    state = json.loads((left / "trainer_state.json").read_text())
    assert [h["epoch"] for h in state["log_history"] if "eval_loss" in h] == [1, 2]
    assert_same_runs(tmp_path, comparison[0])


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused_in_one_line(comparison, tiny_bert, sst2_sample_dir, capsys):
    """Each run folder keeps its run_settings.json: the same comparison with another learning rate into the
    finished folder stops (one line, through the console-script entry point) instead of reusing the old runs."""
    from mixup_trainer.cli import run

    out, _ = comparison
    before = {p: p.stat().st_mtime_ns for p in out.glob("*-seed*/all_results.json")}
    argv = compare_argv(out, tiny_bert, sst2_sample_dir)
    argv[argv.index("--learning_rate") + 1] = "2e-3"
    capsys.readouterr()
    assert run(argv=argv) == 1  # found at run time (the folder), not while parsing
    (line,) = capsys.readouterr().err.splitlines()
    assert "error: output_dir" in line and "none-seed1 holds a run with other settings" in line
    assert "learning_rate: 0.001 -> 0.002" in line and "--overwrite_output_dir" in line
    assert {p: p.stat().st_mtime_ns for p in out.glob("*-seed*/all_results.json")} == before


def test_comparison_errors_are_one_line(tmp_path, capsys):
    from mixup_trainer.cli import run

    argv = ["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path), "--compare", "mixup"]
    assert run(argv=argv) == 2  # a command-line mistake
    (line,) = capsys.readouterr().err.splitlines()
    assert "error: --compare mixup: unknown arm(s) ['mixup']" in line


def test_comparison_arguments(tmp_path):
    from mixup_trainer.cli import parse_args
    from mixup_trainer.compare import run_args

    base = ["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path)]
    args = parse_args([*base, "--compare", "cls,manifold,none", "--compare_seeds=3,4"])
    assert args.run.compare_methods == ["none", "cls", "manifold"] and args.run.compare_seed_list == [3, 4]
    args7 = parse_args([*base, "--seed", "7", "--compare", "input"])
    assert args7.run.compare_methods == ["none", "input"] and args7.run.compare_seed_list is None
    one = run_args(args, "cls", 3, tmp_path / "cls-seed3")  # built from the parsed values, not re-parsed
    assert (one.training.mixup_method, one.training.seed, one.train_sample_seed) == ("cls", 3, 3)
    assert one.training.output_dir == str(tmp_path / "cls-seed3") and one.run.compare is None
    assert one.training.log_level == "error" and one.training.eval_strategy == args.training.eval_strategy
    for bad, match in ((["--compare", "mixup"], "unknown arm"), (["--compare", ","], "comma-separated"),
                       (["--compare", "none"], "name a MixUp method"),
                       (["--compare", "cls", "--mixup_method", "cls"], "--mixup_method"),
                       (["--compare", "cls", "--seed", "1", "--compare_seeds", "1,2"], "--compare_seeds"),
                       (["--compare", "cls", "--eval_strategy", "no"], "evaluates during training")):
        with pytest.raises(ValueError, match=match):
            parse_args([*base, *bad])
    # abbreviated flags are what argparse makes of them: --compare_s is --compare_seeds
    assert parse_args([*base, "--compare", "cls", "--compare_s", "1,2"]).run.compare_seed_list == [1, 2]
    # a JSON config gives the same runs as the command line
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"task": "sst2", "model_name_or_path": "m", "output_dir": str(tmp_path),
                                  "compare": "manifold", "learning_rate": 1e-4}))
    from_json = run_args(parse_args([str(config)]), "manifold", 42, tmp_path / "manifold-seed42")
    from_argv = run_args(parse_args([*base, "--compare", "manifold", "--learning_rate", "1e-4"]), "manifold", 42,
                         tmp_path / "manifold-seed42")
    assert from_json.training.to_dict() == from_argv.training.to_dict()


def test_comparison_arms_are_named_sets_of_arguments(tmp_path):
    from mixup_trainer.cli import parse_args
    from mixup_trainer.compare import comparison_arms, run_args

    args = parse_args(["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path),
                       "--compare", "ls0.1,manifold"])
    # --compare's arms, as this dict: the baseline first
    assert comparison_arms(args) == {"none": {"mixup_method": "none"},
                                     "ls0.1": {"mixup_method": "none", "label_smoothing_factor": 0.1},
                                     "manifold": {"mixup_method": "manifold"}}
    arms = {"manifold": {"mixup_method": "manifold"},
            "manifold-max": {"mixup_method": "manifold", "mixup_padding": "max"}}
    assert comparison_arms(args, arms) == arms
    one = run_args(args, "manifold-max", 5, tmp_path / "manifold-max-seed5", arms["manifold-max"])
    assert (one.training.mixup_method, one.training.mixup_padding, one.training.seed) == ("manifold", "max", 5)
    for bad, match in (({"a": {}}, "at least one other arm"), ({"none": {}, "a/b": {}}, "arm names"),
                       ({"none": {}, "b": {"seed": 3}}, "sets these for each run")):
        with pytest.raises(ValueError, match=match):
            comparison_arms(args, bad)


@pytest.mark.slow
def test_a_custom_arm_writes_its_rows_under_its_name(tiny_bert, sst2_sample_dir, tmp_path):
    """compare(args, arms=...): a flag-set arm trains with its flags into <name>-seed<seed> and is reported,
    paired, against the first arm (here not none)."""
    from mixup_trainer.cli import parse_args
    from mixup_trainer.compare import compare

    argv = compare_argv(tmp_path, tiny_bert, sst2_sample_dir)
    argv[argv.index("--compare_seeds") + 1] = "1"
    argv[argv.index("--num_train_epochs") + 1] = "1"
    argv[argv.index("--max_train_samples") + 1] = "16"
    arms = {"manifold": {"mixup_method": "manifold"},
            "manifold-max": {"mixup_method": "manifold", "mixup_padding": "max"}}
    report = compare(parse_args(argv), arms=arms)
    assert report["methods"] == ["manifold", "manifold-max"] and report["baseline"] == "manifold"
    assert sorted(p.name for p in tmp_path.glob("*-seed*")) == ["manifold-max-seed1", "manifold-seed1"]
    assert json.loads((tmp_path / "manifold-max-seed1" / "run_settings.json").read_text())["mixup_padding"] == "max"
    assert json.loads((tmp_path / "manifold-seed1" / "run_settings.json").read_text())["mixup_padding"] == "pair"
    own = json.loads((tmp_path / "manifold-max-seed1" / "all_results.json").read_text())
    assert report["summary"]["best"]["mean"]["manifold-max"]["eval_loss"]["mean"] == pytest.approx(own["eval_loss"])
    assert list(report["summary"]["best"]["paired"]) == ["manifold-max"]
    text = (tmp_path / "comparison.md").read_text()
    assert "| manifold-max | 1 | " in text and "| manifold-max − manifold | 1 | " in text


def test_regmixup_and_kernel_arms_set_their_flags_and_regmixup_gets_its_own_alpha(tmp_path):
    from mixup_trainer.cli import parse_args
    from mixup_trainer.compare import comparison_arms, run_args

    base = ["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path)]
    args = parse_args([*base, "--compare", "manifold,manifold+reg,cls+sk,input+reg+sk,ls0.1"])
    assert comparison_arms(args) == {
        "none": {"mixup_method": "none"}, "manifold": {"mixup_method": "manifold"},
        "manifold+reg": {"mixup_method": "manifold", "mixup_objective": "regmix"},
        "cls+sk": {"mixup_method": "cls", "mixup_similarity_kernel": True},
        "input+reg+sk": {"mixup_method": "input", "mixup_objective": "regmix", "mixup_similarity_kernel": True},
        "ls0.1": {"mixup_method": "none", "label_smoothing_factor": 0.1}}
    runs = {arm: run_args(args, arm, 1, tmp_path / f"{arm}-seed1").training for arm in comparison_arms(args)}
    assert (runs["manifold"].alpha, runs["manifold+reg"].alpha, runs["input+reg+sk"].alpha) == (1.0, 10.0, 10.0)
    assert runs["cls+sk"].similarity_kernel is not None and runs["manifold"].similarity_kernel is None
    typed = parse_args([*base, "--compare", "manifold,manifold+reg", "--mixup_alpha", "0.4"])
    assert run_args(typed, "manifold+reg", 1, tmp_path / "x").training.alpha == 0.4  # a typed α is every arm's
    for bad in ("none+reg", "manifold+sk+reg", "manifold+reg+reg", "ls0.1+reg", "manifold+"):
        with pytest.raises(ValueError, match="unknown arm"):
            parse_args([*base, "--compare", bad])
    with pytest.raises(ValueError, match="in a comparison, an arm such as manifold\\+reg"):
        parse_args([*base, "--compare", "manifold", "--mixup_objective", "regmix"])


def test_an_arm_with_its_own_alpha_sets_it_over_the_typed_alpha_and_regmixups_default(tmp_path):
    """<arm>@<α> separates α from the method or objective: manifold@10 is plain MixUp at RegMixup's α,
    manifold+reg@1 RegMixup at plain MixUp's; the arm's α wins over --mixup_alpha; each runs in its own folder."""
    from mixup_trainer.cli import parse_args
    from mixup_trainer.compare import comparison_arms, run_args

    base = ["--task", "sst2", "--model_name_or_path", "m", "--output_dir", str(tmp_path)]
    args = parse_args([*base, "--compare", "manifold,manifold@10,manifold+reg,manifold+reg@1,cls+sk@0.4"])
    arms = comparison_arms(args)
    assert arms["manifold@10"] == {"mixup_method": "manifold", "mixup_alpha": 10.0}
    assert arms["manifold+reg@1"] == {"mixup_method": "manifold", "mixup_objective": "regmix", "mixup_alpha": 1.0}
    runs = {arm: run_args(args, arm, 1, tmp_path / f"{arm}-seed1").training for arm in arms}
    assert [runs[a].alpha for a in ("manifold", "manifold@10", "manifold+reg", "manifold+reg@1", "cls+sk@0.4")] == \
        [1.0, 10.0, 10.0, 1.0, 0.4]
    assert runs["manifold@10"].mixup_objective == "mix" and runs["manifold+reg@1"].mixup_objective == "regmix"
    assert runs["cls+sk@0.4"].similarity_kernel is not None
    typed = parse_args([*base, "--compare", "manifold,manifold@2", "--mixup_alpha", "0.4"])
    assert [run_args(typed, a, 1, tmp_path / a).training.alpha for a in ("manifold", "manifold@2")] == [0.4, 2.0]
    for bad in ("manifold@", "manifold@0", "manifold@-1", "manifold@inf", "manifold@x", "none@1", "ls0.1@1",
                "manifold@1+reg", "manifold@1@2"):
        with pytest.raises(ValueError, match="unknown arm"):
            parse_args([*base, "--compare", bad])


@pytest.mark.slow
def test_variant_arms_train_and_are_reported_under_the_names_as_written(tiny_bert, sst2_sample_dir, tmp_path):
    argv = compare_argv(tmp_path, tiny_bert, sst2_sample_dir)
    argv[argv.index("--compare") + 1] = "manifold+reg,manifold+sk,manifold+reg+sk,manifold+reg@2"
    argv[argv.index("--compare_seeds") + 1] = "1"
    argv[argv.index("--num_train_epochs") + 1] = "1"
    argv[argv.index("--max_train_samples") + 1] = "16"
    proc = subprocess.run([sys.executable, "run_glue_mixup.py", *argv], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "comparison.json").read_text())
    arms = ["none", "manifold+reg", "manifold+sk", "manifold+reg+sk", "manifold+reg@2"]
    assert report["methods"] == arms and list(report["summary"]["best"]["paired"]) == arms[1:]
    for arm in arms[1:]:
        settings = json.loads((tmp_path / f"{arm}-seed1" / "run_settings.json").read_text())
        assert (settings["mixup_objective"] == "regmix") == ("+reg" in arm)
        assert settings["mixup_similarity_kernel"] == ("+sk" in arm)
        assert settings["mixup_alpha"] == (2.0 if "@2" in arm else 10.0 if "+reg" in arm else 1.0)
        own = json.loads((tmp_path / f"{arm}-seed1" / "all_results.json").read_text())
        assert report["summary"]["best"]["mean"][arm]["eval_loss"]["mean"] == pytest.approx(own["eval_loss"])
    assert "| manifold+reg+sk − none | 1 | " in (tmp_path / "comparison.md").read_text()


@pytest.mark.parametrize("other_copy", ["finishes the run", "dies"])
def test_a_run_another_copy_is_training_is_waited_for_not_trained_twice(comparison, tiny_bert, sst2_sample_dir,
                                                                        tmp_path, monkeypatch, capsys, other_copy):
    """Run 1's folder is locked by another process (a copy of the comparison training it): this copy trains
    the other runs, waits, and then either checks the run the other copy finished, or (the other copy
    died) resumes it itself. The report's numbers are the uninterrupted comparison's."""
    from mixup_trainer import compare as compare_module
    from mixup_trainer.cli import main

    reference, _ = comparison
    held = tmp_path / "none-seed1"
    holder = hold_lock(held)
    waits = []

    def other_copy_ends(seconds):
        waits.append(seconds)
        if len(waits) == 1:
            if other_copy == "finishes the run":
                shutil.copytree(reference / "none-seed1", held, dirs_exist_ok=True)
            holder.kill()
            holder.wait()

    try:
        monkeypatch.setattr(compare_module.time, "sleep", other_copy_ends)
        capsys.readouterr()
        main(compare_argv(tmp_path, tiny_bert, sst2_sample_dir))
    finally:
        holder.kill()
        holder.wait()
    stdout = capsys.readouterr().out
    assert "[compare] 1 run(s) being trained by another process (none seed 1): waiting for them" in stdout
    assert waits == [compare_module.WAIT_SECONDS]
    trained_here = "run 1/4 none seed 1: epoch 2/2" in stdout
    assert trained_here == (other_copy == "dies"), stdout
    assert ("run 1/4 none seed 1: finished before (all_results.json), not redone" in stdout) != trained_here
    assert "run 4/4 manifold seed 2: epoch 2/2" in stdout
    assert f"[compare] {3 + trained_here} run(s) trained here in" in stdout
    report = json.loads((tmp_path / "comparison.json").read_text())
    assert [(r["method"], r["seed"]) for r in report["runs"]] == [(m, s) for s in SEEDS for m in METHODS]
    assert_same_runs(tmp_path, reference)


@pytest.mark.slow
def test_two_copies_of_one_comparison_share_its_runs(comparison, tiny_bert, sst2_sample_dir, tmp_path):
    """The same command started twice on one folder (two workers, e.g. one per GPU): each run is trained by
    exactly one of them, both end with the same report, and its numbers are the single comparison's."""
    command = [sys.executable, "run_glue_mixup.py", *compare_argv(tmp_path, tiny_bert, sst2_sample_dir)]
    copies = [subprocess.Popen(command, cwd=REPO, env={**ENV, "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [copy.communicate(timeout=600) for copy in copies]
    for copy, (out, err) in zip(copies, outputs):
        assert copy.returncode == 0, f"{out[-3000:]}\n{err[-3000:]}"
    for i, (method, seed) in enumerate([(m, s) for s in SEEDS for m in METHODS], 1):
        trained = [f"run {i}/4 {method} seed {seed}: epoch 2/2" in out for out, _ in outputs]
        assert sum(trained) == 1, (method, seed, [out for out, _ in outputs])
    reports = [out[out.index("# MixUp comparison"):] for out, _ in outputs]
    assert reports[0].split("## Plots")[0] == reports[1].split("## Plots")[0]
    assert_same_runs(tmp_path, comparison[0])
    assert len(json.loads((tmp_path / "comparison.json").read_text())["runs"]) == 4


@pytest.mark.slow
def test_overwrite_output_dir_redoes_every_run_with_the_new_settings(comparison, tiny_bert, sst2_sample_dir, tmp_path,
                                                                     capsys):
    """On a finished comparison, --overwrite_output_dir with another learning rate retrains all four runs
    (instead of the refusal above); the report then holds the new runs' numbers, and the next plain rerun
    finds them finished."""
    from mixup_trainer.cli import main

    out = tmp_path / "compare"
    shutil.copytree(comparison[0], out)
    argv = compare_argv(out, tiny_bert, sst2_sample_dir)
    argv[argv.index("--learning_rate") + 1] = "2e-3"
    capsys.readouterr()
    main([*argv, "--overwrite_output_dir"])
    stdout = capsys.readouterr().out
    assert "[compare] 4 run(s) trained here in" in stdout and "not redone" not in stdout
    report = json.loads((out / "comparison.json").read_text())
    for method in METHODS:
        for seed in SEEDS:
            ours, old = own_files(out, method, seed)[0], own_files(comparison[0], method, seed)[0]
            settings = json.loads((out / f"{method}-seed{seed}" / "run_settings.json").read_text())
            assert settings["learning_rate"] == 2e-3, (method, seed)
            assert ours["eval_loss"] != old["eval_loss"], (method, seed)  # retrained, not kept
        losses = [own_files(out, method, s)[1]["eval_loss"] for s in SEEDS]  # the new runs' last epoch
        assert report["summary"]["last"]["mean"][method]["eval_loss"] == expected_stat(losses), method
    main(argv)
    assert capsys.readouterr().out.count("finished before (all_results.json), not redone") == 4


@pytest.mark.slow
def test_runs_that_predict_one_class_everywhere_are_named_in_the_report(comparison, tiny_bert, sst2_sample_dir,
                                                                        tmp_path, capsys):
    """comparison.json's one_class_runs lists exactly the runs whose every scored prediction (the runs' own
    prediction files) is one class; a run made to predict class 0 everywhere is then named under the
    best-epoch table, and it stays in the means."""
    from mixup_trainer.cli import main

    out = tmp_path / "compare"
    shutil.copytree(comparison[0], out)

    def predictions(method, seed):
        return out / f"{method}-seed{seed}" / "eval_predictions.jsonl"

    def one_class(report):
        by_hand = []
        for seed in SEEDS:
            for method in METHODS:
                classes = {json.loads(line)["prediction"] for line in predictions(method, seed).read_text().splitlines()}
                if len(classes) == 1:
                    by_hand.append(dict(method=method, seed=seed, predicted_class=classes.pop()))
        key = lambda r: (r["method"], r["seed"])  # noqa: E731
        assert sorted(report["one_class_runs"], key=key) == sorted(by_hand, key=key)
        return by_hand

    assert {"method": "manifold", "seed": 2, "predicted_class": 0} not in one_class(
        json.loads((out / "comparison.json").read_text()))
    rows = [json.loads(line) for line in predictions("manifold", 2).read_text().splitlines()]
    predictions("manifold", 2).write_text("".join(
        json.dumps({**row, "prediction": 0, "probs": [0.6, 0.4]}) + "\n" for row in rows))
    main(compare_argv(out, tiny_bert, sst2_sample_dir))  # every run finished: only the report is rewritten
    assert "[compare] 0 run(s) trained here in" in capsys.readouterr().out
    report = json.loads((out / "comparison.json").read_text())
    assert {"method": "manifold", "seed": 2, "predicted_class": 0} in one_class(report)
    text = (out / "comparison.md").read_text()
    note = text[text.index("**Runs whose kept model predicts one class"):].split("\n")[0]
    assert "manifold seed 2 (always class 0)" in note and text.index(note) < text.index("## Last epoch")
    assert report["summary"]["best"]["mean"]["manifold"]["eval_loss"]["n"] == 2
