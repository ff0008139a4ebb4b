"""The Python code blocks of the README and the user guide run as written (in a fresh
interpreter each)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "guide.md")
BLOCKS = [block for document in DOCUMENTS for block in re.findall(r"```python\n(.*?)```", document.read_text(), re.S)]
README_BYTES = 15_000


def test_readme_stays_short_and_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) < README_BYTES
    first, second = re.findall(r"```bash\n(.*?)```", text, re.S)[:2]
    assert "pip install -e '.[test]'" in first and "recon run" in first
    assert "pytest" in second


def test_readme_has_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index, tmp_path):
    code = BLOCKS[index]
    if "def test_" in code:  # a pytest example: run it with pytest, using the plugin's fixtures
        path = tmp_path / "test_readme_example.py"
        path.write_text(code)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)]
    else:
        command = [sys.executable, "-c", code]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
