"""The README's Python examples run as written."""
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    namespace = {}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    assert namespace["small"].num_parameters() < namespace["net"].num_parameters()
    assert namespace["logits"].shape == (8, 10)
    assert namespace["dh0"].shape == namespace["h0"].shape
