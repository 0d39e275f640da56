"""The C sources are clang-format clean (.clang-format at the top)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not shutil.which("clang-format"), reason="clang-format not installed")
def test_clang_format_clean():
    files = sorted(str(p) for d in ("src", "tests/unit", "tests/fuzz")
                   for p in (ROOT / d).rglob("*.[ch]"))
    assert files
    r = subprocess.run(["clang-format", "--dry-run", "--Werror", *files],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
