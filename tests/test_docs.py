"""The generated docs stay true to their source of truth."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_register_table_is_generated_from_the_map():
    current = (ROOT / "docs" / "registers.md").read_text()
    fresh = subprocess.run([sys.executable, "-m", "obscura.hw.regs"], capture_output=True,
                           text=True, check=True).stdout
    assert current == fresh, "docs/registers.md is stale: run `make docs`"
