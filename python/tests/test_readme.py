"""README's "Regression-test your kernel" example, exactly as printed: it passes under pytest with
its kernel, and its test fails (an AssertionError naming the refuted heads) for the same kernel
with known bugs put in, so the example cannot rot and does what the README says."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from kernels import attention as ref_kernel

README = os.environ.get("PR_README", os.path.join(os.path.dirname(__file__), "..", "..", "README.md"))


def example():
    text = open(README, encoding="utf-8").read()
    part = text.split("## Regression-test your kernel", 1)
    assert len(part) == 2, "README has no section 'Regression-test your kernel'"
    block = re.search(r"```python\n(.*?)```", part[1], re.S)
    assert block, "no ```python block in README's section 'Regression-test your kernel'"
    return block.group(1)


def test_readme_example_passes_under_pytest(tmp_path):
    path = tmp_path / "test_readme_example.py"
    path.write_text(example())
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout, run.stdout


def regressions(kernel):
    """the README's kernel with one regression each (the problem: causal RoPE, scale 1/sqrt(d))"""
    def bug(**kw):
        def run(q, k, v):
            opts = {"causal": True, "scale": 1.0 / np.sqrt(q.shape[-1])}
            opts.update(kw)
            return ref_kernel(q, k, v, **opts)
        return run

    def bumped(q, k, v):
        o = kernel(q, k, v)
        o[0, 5, 7] += 1e-4
        return o

    return {
        "neox layout": bug(layout="neox"),
        "missing scale": bug(scale=1.0),
        "mask one off": bug(mask_shift=1),
        "keys one position off": bug(offset_k=1),
        "float16 inputs": lambda q, k, v: kernel(*(x.astype(np.float16).astype(np.float32) for x in (q, k, v))),
        "one element off by 1e-4": bumped,
    }


@pytest.mark.parametrize("name", list(regressions(None)))
def test_readme_example_fails_when_the_kernel_regresses(name):
    ns = {"__name__": "readme_example"}
    exec(compile(example(), "README.md", "exec"), ns)
    tests = [f for n, f in ns.items() if n.startswith("test_") and callable(f)]
    assert len(tests) == 1
    tests[0]()  # the kernel as written passes
    ns["my_attention"] = regressions(ns["my_attention"])[name]
    with pytest.raises(AssertionError) as info:
        tests[0]()
    assert "refuted" in str(info.value), str(info.value)
