"""The documentation holds: every Python block of the README and of the docs pages runs offline as a
user would paste it (in a fresh folder, with the real MiniLM / SmolLM2 models and no network) and
prints what the page says it prints; every relative link, image and included file exists; every
run-script flag is documented on the flags page."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest

from testing_utils import ENV, REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]
PAGES = [p for p in PAGES if "benchmarks" not in p.relative_to(REPO).parts[1:2]]  # docs/benchmarks links ../benchmarks
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)
#: A block a test cannot run offline on a CPU carries this comment on the line before it, naming its
#: offline twin: <!-- not run by the tests: needs the Hub (or a GPU); offline twin: <where> -->
NOT_RUN = re.compile(r"<!-- not run by the tests: needs (?:the Hub|a GPU)[^;]*; offline twin: [^>]+-->\n\n?$")


def python_blocks() -> dict[str, dict]:
    """{code: {where, expected}} of every ```python block; the same code on several pages is one block
    (run once). `expected`: the ```text block right after it, or the `# {...}` comment lines that end it."""
    blocks = {}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group(1) != "python":
                continue
            code = match.group(2)
            if NOT_RUN.search(text[:match.start()]):
                continue
            expected = None
            after = re.match(r"\s*```text\n(.*?)^```", text[match.end():], re.S | re.M)
            if after:
                expected = after.group(1).strip().splitlines()
            else:
                tail = re.search(r"\n((?:# .*\n)+)\Z", code)
                if tail and tail.group(1).startswith("# {"):
                    expected = [" ".join(line[2:].strip() for line in tail.group(1).splitlines())]
            where = f"{page.relative_to(REPO)}:{text[:match.start()].count(chr(10)) + 1}"
            blocks.setdefault(code, {"where": where, "expected": expected})
    return blocks


BLOCKS = python_blocks()
README_TRAINING_EXAMPLE = re.search(r"## Python API\n\n```python\n(.*?)```", PAGES[0].read_text(), re.S).group(1)


def block_params():
    for code, info in BLOCKS.items():
        if code == README_TRAINING_EXAMPLE:
            continue  # run by tests/test_readme.py, which also checks the numbers it prints
        marks = [pytest.mark.slow] if "trainer.train()" in code else []
        yield pytest.param(code, info["expected"], id=info["where"], marks=marks)


@pytest.mark.parametrize("code,expected", list(block_params()))
def test_python_block_runs_and_prints_what_the_page_says(code, expected, tmp_path):
    env = {**ENV, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}  # run from a fresh folder: nothing but the package
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    if expected is not None:
        printed = proc.stdout.strip().splitlines()
        assert printed[-len(expected):] == [line.strip() for line in expected] or printed == expected


def test_every_python_block_is_run_or_marked():
    """The README and every page have Python blocks, and the ones a test skips say why and where their
    offline twin is (the marker's pattern); the README's training example also appears on the API page."""
    assert len(BLOCKS) >= 5
    api = (REPO / "docs" / "api" / "index.md").read_text(encoding="utf-8")
    assert README_TRAINING_EXAMPLE in api


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|<img[^>]+src=\"([^\"]+)\"")
SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::[\d:]+)?"', re.M)


def outside_code(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", PAGES + [REPO / "RESULTS.md"], ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_and_images_exist(page):
    text = outside_code(page.read_text(encoding="utf-8"))
    missing = []
    for match in LINK.finditer(text):
        target = (match.group(1) or match.group(2)).split("#", 1)[0]
        if not target or re.match(r"[a-z]+:", target):
            continue  # an anchor on the page, or a web address
        if not (page.parent / target).exists():
            missing.append(target)
    for target in SNIPPET.findall(text):  # files included by pymdownx.snippets, relative to the repository
        if not (REPO / target).is_file():
            missing.append(target)
    assert not missing, missing


def test_flags_page_names_every_run_script_flag():
    """Each field of the run scripts' argument dataclasses (MixUp included) is on the flags page, so the
    page cannot fall behind script_args.py."""
    from mixup_trainer.arguments import MixUpTrainingArguments
    from mixup_trainer.script_args import (CalibrationArguments, DataTrainingArguments, ModelArguments,
                                           RunArguments, ScriptTrainingArguments)

    page = (REPO / "docs" / "run-scripts" / "flags.md").read_text(encoding="utf-8")
    names = {f.name for cls in (ModelArguments, DataTrainingArguments, RunArguments, CalibrationArguments)
             for f in dataclasses.fields(cls)}
    names |= {f.name for f in dataclasses.fields(MixUpTrainingArguments) if f.name.startswith("mixup_")}
    names |= set(ScriptTrainingArguments.__annotations__)  # the TrainingArguments fields whose default it changes
    missing = sorted(n for n in names if f"`--{n}`" not in page and f"--{n}`" not in page and f"`--{n}," not in page
                     and f", `--{n}`" not in page)
    assert not missing, missing


def test_mkdocs_nav_lists_every_page():
    """Every page under docs/ is in mkdocs.yml's nav (mkdocs build --strict checks the rest)."""
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    pages = [p.relative_to(REPO / "docs").as_posix() for p in PAGES[1:]]
    assert pages and all(f": {p}\n" in nav for p in pages), [p for p in pages if f": {p}\n" not in nav]
