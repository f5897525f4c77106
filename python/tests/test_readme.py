"""The README's first Python example runs as printed."""

import contextlib
import io
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_example_runs():
    text = README.read_text()
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    first, second = out.getvalue().splitlines()
    n, nlist, disk = first.split()
    assert (int(n), int(nlist)) == (19_900, 64) and int(disk) > 0
    assert second.endswith(" 19900")
