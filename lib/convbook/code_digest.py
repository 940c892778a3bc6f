"""The code a training run executes, as one digest for the run cache's key.

A model's result depends on more than its class's own source: the blocks it is built from, the
helper functions they call (``channel_shuffle``), a class defined in a notebook. ``code_digest``
covers what ``objects`` (modules, classes, functions) run: those with a source file by the
whole file and, transitively, the files of the modules of ours that file refers to (convbook's,
or any outside the standard library and site-packages); those without one (a notebook's, or
made by ``exec``) by their bytecode, constants, defaults and closures, and by what their code
names in its globals. Installed libraries are left out: the run key holds their versions.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import site
import sys
import sysconfig
import types
from pathlib import Path

import torch


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    """The folders of the standard library and of installed packages. Code there is covered by
    the versions in the key (torch, torchvision) or does not shape a run's numbers."""
    paths = sysconfig.get_paths()
    roots = {paths.get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.update(getattr(site, "getsitepackages", list)())
    if hasattr(site, "getusersitepackages"):
        roots.add(site.getusersitepackages())
    return tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)


def _existing_file(name: str | None) -> str | None:
    path = os.path.realpath(name) if name else None
    return path if path and os.path.isfile(path) else None


def _installed(path: str | None) -> bool:
    return path is not None and path.startswith(_installed_roots())


def _ours(module) -> bool:
    """A module whose code the key must hash: convbook's, or any with a source file outside the
    standard library and site-packages (a chapter's helper, a test's temporary module)."""
    path = _existing_file(getattr(module, "__file__", None))
    name = getattr(module, "__name__", "")
    return path is not None and (name.split(".")[0] == "convbook" or not _installed(path))


def _own_functions(cls: type) -> list:
    """The functions a class defines itself (methods, static and class methods, properties)."""
    found = []
    for value in vars(cls).values():
        value = getattr(value, "__func__", value)
        if isinstance(value, property):
            found += [f for f in (value.fget, value.fset, value.fdel) if f is not None]
        elif inspect.isfunction(value):
            found.append(value)
    return found


class _CodeWalk:
    """What the code behind some classes and functions consists of: the source files of their
    modules (and of the modules those refer to), and the bytecode of what has no source file.
    Only contents enter the digest, sorted, so it is the same in every process."""

    def __init__(self):
        self.parts: set[str] = set()  # "file <module> <sha>" and "code <qualname> <sha>"
        self.modules: set[str] = set()
        self.seen: set[int] = set()  # ids, for this walk only (never part of the key)
        self.alive: list = []  # keeps walked objects alive, so no id is reused meanwhile

    def digest(self) -> str:
        return hashlib.sha256("\n".join(sorted(self.parts)).encode()).hexdigest()

    def cover(self, obj) -> None:
        if id(obj) in self.seen:
            return
        self.seen.add(id(obj))
        self.alive.append(obj)
        if inspect.ismodule(obj):
            self.module(obj)
        elif inspect.isfunction(obj):
            self.function(obj)
        elif inspect.isclass(obj):
            self.cls(obj)

    def module(self, module) -> None:
        """A module of ours: its source file, then whatever its globals name. A package's
        submodules are skipped as globals (the import system adds each one to the package
        whenever it is imported anywhere, which would make the key depend on import order);
        the classes and functions the package names are followed."""
        name = module.__name__
        if name in self.modules or not _ours(module):
            return
        self.modules.add(name)
        path = _existing_file(module.__file__)
        self.parts.add(f"file {name} {hashlib.sha256(Path(path).read_bytes()).hexdigest()}")
        package = hasattr(module, "__path__")
        for value in list(vars(module).values()):
            if package and inspect.ismodule(value) and value.__name__.startswith(name + "."):
                continue
            if inspect.ismodule(value) or inspect.isclass(value) or inspect.isfunction(value):
                self.cover(value)

    def function(self, fn) -> None:
        wrapped = getattr(fn, "__wrapped__", None)  # a decorator's wrapper: the function too
        if wrapped is not None:
            self.cover(wrapped)
        path = _existing_file(fn.__code__.co_filename)
        module = sys.modules.get(fn.__module__)
        if path is not None and path == _existing_file(getattr(module, "__file__", None)):
            self.module(module)  # its source file covers it (nothing, if installed)
        elif not _installed(path):  # a notebook's or exec's function: its bytecode
            text = "|".join([fn.__qualname__, self.code_text(fn.__code__, fn.__globals__),
                             self.describe(fn.__defaults__), self.describe(fn.__kwdefaults__),
                             self.describe(_cell_contents(fn))])
            self.parts.add(f"code {fn.__qualname__} {hashlib.sha256(text.encode()).hexdigest()}")

    def cls(self, cls: type) -> None:
        module = sys.modules.get(cls.__module__)
        path = _existing_file(getattr(module, "__file__", None))
        if path is not None and getattr(module, cls.__name__, None) is cls:
            self.module(module)  # its source file covers it (nothing, if installed)
            return
        files = {_existing_file(f.__code__.co_filename) for f in _own_functions(cls)}
        if path is not None and path in files:  # a class defined inside a function
            self.module(module)
        elif not any(_installed(f) for f in files):  # defined in a notebook or by exec
            skip = {"__dict__", "__weakref__"}
            text = "|".join([cls.__qualname__, self.describe(cls.__bases__)] +
                            [f"{name}={self.describe(value)}"
                             for name, value in sorted(vars(cls).items()) if name not in skip])
            self.parts.add(f"code {cls.__qualname__} {hashlib.sha256(text.encode()).hexdigest()}")

    def code_text(self, code, namespace: dict) -> str:
        """The bytecode, its constants (nested code objects included), the names it uses, and
        what those names are in the function's globals (walked in turn)."""
        used = [f"{n}={self.describe(namespace[n])}" for n in code.co_names if n in namespace]
        return "|".join([code.co_name, code.co_code.hex(), ",".join(code.co_names),
                         ",".join(code.co_varnames), ",".join(code.co_freevars),
                         "(" + ",".join(self.describe(c, namespace) for c in code.co_consts) + ")",
                         ",".join(used)])

    def describe(self, value, namespace: dict | None = None) -> str:
        """A deterministic text for a constant, default or global: plain values by repr,
        tensors by content, code by what it is, walked classes and functions by name; any
        other object by its type only (its repr may hold an address)."""
        if isinstance(value, types.CodeType):
            return self.code_text(value, namespace or {})
        if type(value) in (str, bytes, int, float, complex, bool, type(None), type(...)):
            return repr(value)
        if type(value) in (tuple, list):
            return "(" + ",".join(self.describe(v, namespace) for v in value) + ")"
        if type(value) in (set, frozenset):
            return "{" + ",".join(sorted(self.describe(v) for v in value)) + "}"
        if type(value) is dict:
            return "{" + ",".join(sorted(f"{self.describe(k)}:{self.describe(v)}"
                                         for k, v in value.items())) + "}"
        if isinstance(value, torch.Tensor):
            return _tensor_text(value)
        if isinstance(value, functools.partial):
            return f"partial({self.describe((value.func, value.args, value.keywords))})"
        if isinstance(value, (staticmethod, classmethod)):
            return self.describe(value.__func__)
        if isinstance(value, property):
            return self.describe((value.fget, value.fset, value.fdel))
        if inspect.ismodule(value) or inspect.isclass(value) or inspect.isfunction(value):
            self.cover(value)
            return f"{getattr(value, '__module__', '')}.{value.__qualname__}" \
                if not inspect.ismodule(value) else value.__name__
        return f"<{type(value).__module__}.{type(value).__qualname__}>"


def _tensor_text(tensor: torch.Tensor) -> str:
    """A tensor by shape, dtype and contents (a fixed kernel a notebook's forward uses)."""
    text = f"tensor{tuple(tensor.shape)}{tensor.dtype}"
    try:
        flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        return f"{text}:{hashlib.sha256(flat.numpy().tobytes()).hexdigest()}"
    except (RuntimeError, TypeError):  # sparse, quantized: shape and dtype only
        return text


def _cell_contents(fn) -> tuple:
    """The values a closure captured (an empty cell as None)."""
    values = []
    for cell in fn.__closure__ or ():
        try:
            values.append(cell.cell_contents)
        except ValueError:  # a cell not filled yet
            values.append(None)
    return tuple(values)


def code_digest(objects) -> str:
    """A digest of the code that ``objects`` (modules, classes, functions) run. Those with a
    source file count by the whole file, and transitively by the files of the modules of ours
    it refers to (convbook's, or any outside the standard library and site-packages), so that
    editing a helper a class calls changes the digest too. Those without one (defined in a
    notebook or by ``exec``) count by their bytecode, constants, defaults and closures, and by
    the functions and classes their code names in its globals. Installed libraries are left
    out: the key holds their versions."""
    walk = _CodeWalk()
    for obj in objects:
        walk.cover(obj)
    return walk.digest()
