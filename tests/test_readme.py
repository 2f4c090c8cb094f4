"""The README holds word for word: its Python examples print what it says they print, every project
file it names exists, and it stays a five-minute read that sends the reference to docs/ (the docs
pages' own examples and links: tests/test_docs.py)."""

import re
import subprocess
import sys

import pytest

from testing_utils import ENV, REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    start = README.index(f"\n{heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def run_python(code: str, cwd) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout.strip().splitlines()


@pytest.mark.slow
def test_python_api_example_prints_the_readme_numbers(tmp_path):
    text = section("## Python API")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    printed = re.search(r"ends by printing, on every run .*?`(\{.*?\})`", text, re.S).group(1)
    assert run_python(code, tmp_path)[-1] == printed
    assert (tmp_path / "out" / "model" / "config.json").is_file()
    assert not list((tmp_path / "out").glob("checkpoint-*"))  # the example leaves only what the user needs


def test_calibration_example_prints_the_readme_output(tmp_path):
    text = section("## Use the metric from any project")
    code, output = re.search(r"A runnable example.*?```python\n(.*?)```\s*```text\n(.*?)```", text, re.S).groups()
    assert run_python(code, tmp_path) == output.strip().splitlines()


def test_named_project_files_exist():
    """Every `name.py` / `name.md` / `name.sh` in the README is a file of this repository (transformers'
    run_glue.py excepted), so no instruction points at a file a clone does not have."""
    named = {n for n in re.findall(r"`(?:python )?([\w./-]+\.(?:py|md|sh))\b", README) if not n.endswith("run_glue.py")}
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split()
    files = set(listed) | {path.rsplit("/", 1)[-1] for path in listed}
    missing = sorted(n for n in named if n not in files and n.removeprefix("./") not in files)
    assert not missing, missing
    assert "DESIGN.md" not in README and "example.py" not in README


def test_readme_is_short_and_links_the_docs():
    """At most 300 lines (it is also the PyPI long description); the two commands and the Hub form stay
    in it; a timing only beside the load it was measured at (idle and busy) and a link to how; every docs
    page is linked from it."""
    assert len(README.splitlines()) <= 300
    commands = section("## Two commands")
    assert "make demo" in commands and "make test" in commands and "--model_name_or_path bert-base-uncased" in commands
    timed = [s for s in re.split(r"(?<=\.)\s", README) if re.search(r"\d+ min \d+ s|\bload ~?\d", s)]
    assert all("idle" in s and "busy processes" in s and "docs/contributing.md" in s for s in timed), timed
    pages = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*/**/*.md") if "benchmarks" not in p.parts)
    pages += sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))
    assert not [p for p in pages if f"]({p})" not in README and p != "docs/metric-card.md"]
    assert "make docs" in README and "long_description = file: README.md" in (REPO / "setup.cfg").read_text()


def test_the_comparison_excerpt_is_the_demo_report_word_for_word():
    """Every table row the README quotes from `make demo`'s report is a row of that report file."""
    rows = [line for line in section("## Is MixUp worth it on my data? `--compare`").splitlines() if line.startswith("| ")]
    report = (REPO / "benchmarks" / "results" / "demo" / "comparison.md").read_text(encoding="utf-8").splitlines()
    assert len(rows) >= 7 and not [row for row in rows if row not in report]
    assert "## Ensemble of 3 seeds" in "\n".join(report)
