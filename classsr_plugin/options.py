"""Options and network configs read from files: YAML read safely (no code runs), unknown keys
named with the valid ones, and what a file may ask of a network it describes (architecture
only: no model hub, no other file, a bounded probe tile). checkpoint.load reads through here."""
import inspect
import os

from .archs import resolve_arch
from .checks import Refused

PROBE_TILES = (8, 256)  # px: the build-time probe a file may ask for (it runs every branch once)


def read_options(path: str) -> dict:
    """A YAML options file -> a dict, parsed safely: no python tags, so no code runs.
    Unreadable, empty, broken or non-mapping files are one ValueError naming the file."""
    import yaml
    if not os.path.exists(path):
        raise Refused(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{path}: not a text file (expected YAML options)")
    except OSError as err:
        raise Refused(f"{path}: cannot read ({err.strerror or err})")
    if not text.strip():
        raise Refused(f"{path}: empty file (expected YAML options)")
    try:
        opt = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as err:
        where = f"line {err.problem_mark.line + 1}: " if err.problem_mark else ""
        raise Refused(f"{path}: {where}{err.problem}: options are data; tags that build Python objects "
                      f"(!!python/...) are refused and nothing was run")
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise Refused(f"{path}: {where}not valid YAML ({getattr(err, 'problem', None) or err})")
    if not isinstance(opt, dict):
        raise Refused(f"{path}: expected a mapping of options (key: value), got a {type(opt).__name__}")
    from .imports import custom_imports
    custom_imports(opt, path)  # the user's archs, named by the user (mmengine's convention)
    return opt


def check_config(path: str) -> None:
    """mmengine configs: YAML ones are read safely first (mmengine's YAML loader builds Python
    objects); .py configs are Python programs by design."""
    if path.lower().endswith((".yml", ".yaml")):
        read_options(path)
    elif not os.path.exists(path):
        raise Refused(f"{path}: no such file")


def override(opt: dict, changes: dict) -> None:
    """Dotted keys (network_g.share_weights) set in options, parents made as needed."""
    for key, value in (changes or {}).items():
        *parents, leaf = key.split(".")
        node = opt
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value


def check_network(opt, where: str = "network_g") -> None:
    """Unknown keys in a network config (and in a ClassSR base) name the valid ones, before
    the arch's TypeError would."""
    if not isinstance(opt, dict) or "type" not in opt:
        raise KeyError(f"{where}: expected a network config with a 'type' key, got {opt!r}")
    cls = resolve_arch(opt["type"], f"{where}.type")
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if n != "self" and p.kind != p.VAR_POSITIONAL]
        unknown = sorted(set(opt) - set(valid) - {"type"})
        if unknown:
            raise KeyError(f"{where}.{unknown[0]}: unknown key for {cls.__name__}; valid: {', '.join(valid)}")
    if opt["type"] == "ClassSR":
        check_network(opt.get("base"), f"{where}.base")


def check_from_file(opt: dict, where: str = "network_g") -> None:
    """What a network config from a file may not ask: a probe tile outside PROBE_TILES, or a
    classifier that loads weights of its own (a model hub, another file)."""
    check_network(opt, where)
    if opt["type"] != "ClassSR":
        return
    tile = opt.get("probe_tile", 32)
    if type(tile) is not int or not PROBE_TILES[0] <= tile <= PROBE_TILES[1]:
        raise ValueError(f"{where}.probe_tile: {tile!r}: a file may ask for a probe tile of "
                         f"{PROBE_TILES[0]} to {PROBE_TILES[1]} px")
    from .classifier import loading_keys
    bad = loading_keys(opt.get("classifier"))
    if bad:
        raise ValueError(f"{where}.classifier.{bad[0]}: refused when loading a model: it would fetch or open "
                         f"weights of its own (a model hub, another file); a file's classifier names its "
                         f"architecture only, its weights are in the checkpoint")
