"""The bit-equality claim's premise, checked on this machine's CPU: compiled kernels contain no fused
multiply-add and no fast-math flag (``tests/test_fused.py``, ``tests/test_tensor_kernels.py``).

numba keeps the machine code of a function it loads from its disk cache out of reach, so the kernels
are compiled afresh in a child process with an empty cache directory (``NUMBA_CACHE_DIR``) and their
assembly and LLVM IR are searched there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_INSPECT = """
import re
fma = re.compile(r"\\b(v?fn?m(?:add|sub)\\w*|fml[as]\\w*)\\b")
fast = re.compile(r"\\bf(?:add|sub|mul|div|neg)\\s+(?:fast|contract|reassoc|nnan|ninf|nsz|arcp|afn)\\b")
seen = 0
for name, fn in KERNELS:
    for sig in fn.signatures:
        lib = fn.overloads[sig].library
        asm, ir = lib.get_asm_str(), lib.get_llvm_str()
        assert len(asm) > MIN_ASM, "no machine code to inspect"
        assert not fma.search(asm), (name, fma.search(asm).group(0))
        assert not fast.search(ir) and "llvm.fma" not in ir and "fmuladd" not in ir, name
        seen += 1
print(seen)
"""


def signatures_without_fma(setup: str, cache_dir: Path, min_asm: int, timeout: float) -> int:
    """Run ``setup`` (which must compile the kernels and bind ``KERNELS``, a list of (name, dispatcher))
    in a fresh interpreter with an empty numba cache, then search every compiled signature; return how
    many were inspected (an assertion in the child fails the call, with its message)."""
    code = setup + f"\nMIN_ASM = {int(min_asm)}\n" + _INSPECT
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return int(out.stdout.split()[-1])
