"""Users' own modules (their archs): imported by name, never from a checkpoint.

- `classsr --import MODULE` (any subcommand, repeatable) and `custom_imports: [MODULE, ...]` in
  BasicSR options files (or mmengine's `{imports: [...], allow_failed_imports: false}`) import
  them, after the plugin's torchvision alias, so a module that imports basicsr itself works in
  any order. A module that fails is one line naming it and the error.
- Checkpoints written by the plugin record the modules their archs come from
  (`modules_of`); loading one whose arch is unknown names them (`missing_hint`) instead of
  importing anything.
"""
import importlib
import shlex
import sys
from typing import Iterable, List

# archs from these are found without an import of the user's
_KNOWN = ("classsr_plugin", "basicsr", "mmagic", "mmengine", "torch", "timm", "builtins", "__main__")


def import_modules(names: Iterable[str], source: str, allow_failed: bool = False) -> List[str]:
    """Import each module; one that cannot be found or fails while it runs is a ValueError
    naming it and the error (`allow_failed`: said on stderr and passed over, as mmengine does)."""
    from .compat import alias_torchvision_for_basicsr
    alias_torchvision_for_basicsr()  # before any user module can import basicsr
    done = []
    for name in names or ():
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source}: {name!r} is not a module name")
        try:
            importlib.import_module(name)
        except Exception as err:  # a syntax error, or the module's own error while it runs
            msg = _failure(name, err, source)
            if not allow_failed:
                raise ValueError(msg) from err
            print(f"warning: {msg}; passed over (allow_failed_imports)", file=sys.stderr)
            continue
        done.append(name)
    return done


def _failure(name: str, err: Exception, source: str) -> str:
    from .checks import describe
    if isinstance(err, ModuleNotFoundError) and (name + ".").startswith(f"{err.name}."):
        return f"{source}: cannot import {name!r} ({err}); is it on PYTHONPATH or installed?"
    return f"{source}: importing {name!r} failed: {describe(err)}"


def custom_imports(opt: dict, path: str) -> List[str]:
    """Import the `custom_imports` of an options file: a list of module names, or mmengine's
    dict(imports=[...], allow_failed_imports=False)."""
    where = f"{path}: custom_imports"
    names, allow = opt.get("custom_imports") or [], False
    if isinstance(names, dict):
        unknown = sorted(set(names) - {"imports", "allow_failed_imports"})
        if unknown:
            raise ValueError(f"{where}.{unknown[0]}: unknown key; known: allow_failed_imports, imports")
        from .checks import flag
        allow = flag(names.get("allow_failed_imports", False), f"{where}.allow_failed_imports")
        names = names.get("imports") or []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list):
        raise ValueError(f"{where}: expected a list of module names, got {names!r}")
    return import_modules(names, where, allow)


def modules_of(*objs) -> List[str]:
    """The user modules that define these classes / instances (none for the plugin's own)."""
    out = []
    for obj in objs:
        cls = obj if isinstance(obj, type) else type(obj)
        mod = cls.__module__
        if mod.split(".")[0] not in _KNOWN and mod not in out:
            out.append(mod)
    return out


def missing_hint(modules: Iterable[str]) -> str:
    missing = [m for m in modules or () if m not in sys.modules]
    if not missing:
        return ""
    flags = " ".join(f"--import {shlex.quote(m)}" for m in missing)  # names come from the file
    return (f"; this checkpoint was saved with its arch from {', '.join(missing)}: import it first "
            f"(classsr ... {flags}, or custom_imports in options); checkpoints never import code themselves")
