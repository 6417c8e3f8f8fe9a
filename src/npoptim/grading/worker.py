"""The child side of ``npoptim check``: load the user's class and answer probe requests over a pipe.

Run as ``python -I worker.py SPEC`` by :mod:`npoptim.grading.runner`, never imported by the grader
(importing this module runs nothing).  It uses only the standard library and NumPy, and nothing of
npoptim, so the user's code meets no grader object.  ``SPEC`` is a JSON object:
``{"kind": "file"|"notebook"|"module", "path" or "module": ..., "class": NAME, "sys_path": [...]}``.

Protocol: one JSON object per line.  The first line the worker writes is the load reply
``{"ok": true, "info": {...}}`` (the class's ``__init__`` signature, whether it has ``update``) or
``{"ok": false, "error": {...}}``.  Then, for each request line ``{"op": "run", "kwargs": {...},
"attrs": [names], "params": {key: array}, "calls": [{"grads": {key: array}} | {"set": {name: value}}]}``
it builds a fresh instance, runs the calls on fresh copies of the arrays and replies with what it saw:
the attributes after construction, the parameters after each update (copies), which parameter arrays
were replaced by new objects, which gradient arrays were changed, and the first exception.  Arrays
travel as ``{"dtype", "shape", "data": base64 of the raw bytes}``; nothing is pickled.

The protocol keeps the original stdin/stdout file descriptors for itself and points the user's
``print`` at stderr and ``input`` at ``/dev/null``.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import re
import sys
import traceback
import types

SAFE_DTYPES = ("<f8", "<f4", "<f2")
_STDLIB = os.path.dirname(os.__file__) + os.sep


def encode(a) -> dict:
    import numpy as np

    a = np.array(a, order="C")  # not ascontiguousarray: it makes a 0-d array 1-d
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def decode(d: dict):
    import numpy as np

    return np.frombuffer(base64.b64decode(d["data"]), dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


def _error(exc: BaseException, user_files: tuple[str, ...] = ()) -> dict:
    """Type, message and the innermost line of the user's code where ``exc`` arose."""
    where = None
    if isinstance(exc, SyntaxError):
        where = {"file": exc.filename, "line": exc.lineno}
        message = f"{exc.msg} ({os.path.basename(str(exc.filename))}, line {exc.lineno})"
    else:
        message = str(exc)
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            name = frame.filename
            mine = name in user_files or name.startswith("<notebook code cell")
            if name.startswith("<frozen") or (name.startswith(_STDLIB) and "-packages" not in name):
                continue  # importlib's machinery is no place in anyone's code
            if name != __file__ and (mine or (not user_files and f"{os.sep}numpy{os.sep}" not in name)):
                where = {"file": frame.filename, "line": frame.lineno, "code": (frame.line or "").strip()}
                break
    return {"type": type(exc).__name__, "message": message[:2000], "where": where}


NOTEBOOK_FILE = "<notebook code cell {}>"  # counted among the code cells, from 1
#: cell magics whose body is Python (IPython runs it): the body runs, the magic line is skipped
PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun")
_ASSIGN_FROM_IPYTHON = re.compile(r"^(\s*[A-Za-z_][\w.,\s]*?)=\s*[!%]")  # files = !ls, t = %timeit -o f()


def _python_line(line: str) -> str:
    """One notebook line as Python: magics, shell escapes and help requests become no-ops, indentation kept."""
    body = line.lstrip()
    indent = line[: len(line) - len(body)]
    if body.startswith(("%", "!")) or body.startswith("?") or (body.endswith("?") and "#" not in body):
        return indent + "pass"
    m = _ASSIGN_FROM_IPYTHON.match(line)
    if m:
        return m.group(1) + "= None"
    return line


def _notebook_cells(path: str) -> list[str]:
    """The Python of the notebook's code cells, in order (a cell magic with a non-Python body is skipped)."""
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
        cells_in = nb.get("cells", []) if isinstance(nb, dict) else None
        if not isinstance(cells_in, list):
            raise ValueError("no list of cells")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{os.path.basename(path)} is not a Jupyter notebook (.ipynb JSON): {exc}") from None
    cells = []
    for cell in cells_in:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else str(src)
        lines = src.splitlines()
        first = lines[0].strip() if lines else ""
        if first.startswith("%%"):
            magic = first[2:].split(maxsplit=1)[0] if first[2:].strip() else ""
            # %%writefile, %%bash, %%html, ...: the body is not Python (and a file is not written)
            lines = ["pass"] + (lines[1:] if magic in PYTHON_CELL_MAGICS else [])
        cells.append("\n".join(_python_line(ln) for ln in lines))
    return cells


class _IPythonStub:
    """``get_ipython()`` in a notebook (or a script exported from one): every method is a no-op."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None


def _ipython_names() -> dict:
    """``display`` (prints to stderr, like the user's prints) and ``get_ipython`` as a notebook has them."""

    def display(*objs, **kwargs) -> None:
        print(*objs, file=sys.stderr)

    stub = _IPythonStub()
    return {"display": display, "get_ipython": lambda: stub}


def load_class(spec: dict):
    """The class the spec names (raises what the user's code raises, or LookupError / TypeError)."""
    sys.path[:0] = [p for p in spec.get("sys_path", []) if p not in sys.path]
    name = spec["class"]
    kind = spec["kind"]
    if kind == "module":
        import importlib

        namespace = vars(importlib.import_module(spec["module"]))
        where = f"module {spec['module']}"
    elif kind == "file":
        path = spec["path"]
        module = types.ModuleType("__npoptim_check__")
        module.__file__ = path
        module.__dict__.update(_ipython_names())  # a script exported by nbconvert calls get_ipython()
        sys.modules[module.__name__] = module
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec")
        exec(code, module.__dict__)  # the user's file, in this child process only
        namespace = module.__dict__
        where = os.path.basename(path)
    else:
        module = types.ModuleType("__npoptim_check__")
        module.__dict__.update(_ipython_names())
        sys.modules[module.__name__] = module
        for i, src in enumerate(_notebook_cells(spec["path"]), start=1):
            exec(compile(src, NOTEBOOK_FILE.format(i), "exec"), module.__dict__)
        namespace = module.__dict__
        where = os.path.basename(spec["path"])
    if name not in namespace:
        classes = sorted(k for k, v in namespace.items() if isinstance(v, type) and not k.startswith("_"))
        raise LookupError(f"no class {name!r} in {where}; classes there: {', '.join(classes) or 'none'}")
    cls = namespace[name]
    if not isinstance(cls, type):
        raise TypeError(f"{name!r} in {where} is a {type(cls).__name__}, not a class")
    if not callable(getattr(cls, "update", None)):
        raise TypeError(f"class {name!r} in {where} has no update(params, grads) method")
    return cls


def _number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        try:
            import numpy as np

            if isinstance(v, np.floating | np.integer) and not isinstance(v, np.bool_):
                return float(v)
        except ImportError:  # pragma: no cover
            pass
        return None
    return float(v)


def signature_info(cls) -> dict:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return {"inspectable": False, "params": [], "var_keyword": True}
    params, var_kw = [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not p.VAR_POSITIONAL:
            default = None if p.default is p.empty else _number(p.default)
            params.append({"name": p.name, "default": default, "has_default": p.default is not p.empty})
    return {"inspectable": True, "params": params, "var_keyword": var_kw}


def _snapshot(value):
    import numpy as np

    try:
        return encode(np.array(value, dtype=float, copy=True))
    except Exception as exc:  # noqa: BLE001 - the user's object may be anything
        return {"unreadable": f"{type(value).__name__}: {exc}"[:300]}


def run_probe(cls, request: dict, user_files: tuple[str, ...]) -> dict:
    import numpy as np

    reply: dict = {"constructed": False, "ctor_error": None, "attrs": {}, "steps": [], "error": None}
    try:
        opt = cls(**request.get("kwargs", {}))
    except Exception as exc:  # noqa: BLE001
        reply["ctor_error"] = _error(exc, user_files)
        return reply
    reply["constructed"] = True
    for name in request.get("attrs", []):
        reply["attrs"][name] = _number(getattr(opt, name, None))
    params = {k: decode(v) for k, v in request["params"].items()}
    originals = dict(params)
    n_update = 0
    for call in request["calls"]:
        if "set" in call:
            for name, value in call["set"].items():
                setattr(opt, name, value)
            continue
        n_update += 1
        grads = {k: decode(v) for k, v in call["grads"].items()}
        kept = {k: g.copy() for k, g in grads.items()}
        held = {k: grads[k] for k in grads}
        step: dict = {"params": {}, "replaced": [], "grads_changed": []}
        try:
            opt.update(params, grads)
        except Exception as exc:  # noqa: BLE001
            reply["error"] = {"call": n_update, **_error(exc, user_files)}
            break
        finally:
            for k, g in held.items():
                if g.shape != kept[k].shape or not np.array_equal(g, kept[k], equal_nan=True):
                    diff = (
                        np.flatnonzero(~((g == kept[k]) | (np.isnan(g) & np.isnan(kept[k]))))
                        if g.shape == kept[k].shape
                        else [0]
                    )
                    i = int(diff[0]) if len(diff) else 0
                    step["grads_changed"].append(
                        {"key": k, "index": i, "before": float(kept[k].flat[i]), "after": float(g.flat[i])}
                    )
            for k, g in held.items():
                if k not in grads or grads[k] is not g:  # grads[k] = ..., grads.pop(k): the caller's dict changed
                    step["grads_changed"].append({"key": k, "rebound": "replaced" if k in grads else "removed"})
            for k in list(params):
                if params[k] is not originals[k]:
                    step["replaced"].append(k)
                step["params"][k] = _snapshot(params[k])
            reply["steps"].append(step)
    return reply


def main(argv: list[str]) -> int:
    proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # the user's prints go to stderr; stdout's descriptor now carries only the protocol

    def send(obj: dict) -> None:
        proto_out.write(json.dumps(obj) + "\n")
        proto_out.flush()

    spec = json.loads(argv[1])
    user_files = (spec["path"],) if spec["kind"] == "file" else ()
    try:
        cls = load_class(spec)
    except BaseException as exc:  # noqa: BLE001 - SystemExit from the user's module is an error too
        send({"ok": False, "error": _error(exc)})
        return 0
    send({"ok": True, "info": {"signature": signature_info(cls), "qualname": cls.__qualname__}})
    for line in proto_in:
        request = json.loads(line)
        try:
            send({"ok": True, "result": run_probe(cls, request, user_files)})
        except BaseException as exc:  # noqa: BLE001 - e.g. SystemExit raised by update
            send({"ok": False, "error": _error(exc, user_files)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
