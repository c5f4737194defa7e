"""Every `classsr SUB ...` the README and the shipped model cards show uses a subcommand and options
that the CLI has (a card once told users `classsr infer -i`, which infer refuses). Fragments of a
command are fine; a flag the subcommand lacks is not."""
import argparse
import glob
import os
import re
import shlex

from classsr_plugin.cli import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "classsr_plugin",
                                                                                          "weights", "*.md")))


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: set(sub._option_string_actions) for name, sub in action.choices.items()}


def _commands(text):
    """(subcommand, tokens) of every classsr command in inline code or a shell block's lines."""
    snippets = re.findall(r"`(classsr [^`]+)`", text)
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        snippets += [m.group(0) for m in re.finditer(r"(?<![\w/.-])classsr [^\n#|;&]+", joined)]
    for snip in snippets:
        try:
            tokens = shlex.split(snip.replace("\n", " "))
        except ValueError:  # an unbalanced quote in a fragment
            tokens = snip.split()
        if len(tokens) > 1 and re.fullmatch(r"[a-z]+", tokens[1]):
            yield tokens[1], tokens[2:], snip


def test_documented_commands_exist():
    subs = _subcommands()
    seen, wrong = 0, []
    for doc in DOCS:
        with open(os.path.join(ROOT, doc)) as f:
            text = f.read()
        for sub, tokens, snip in _commands(text):
            if sub not in subs:
                wrong.append(f"{doc}: `{snip}`: no subcommand {sub!r}")
                continue
            seen += 1
            flags = [t.split("=")[0] for t in tokens if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", t)]
            wrong += [f"{doc}: `{snip}`: {sub} has no {flag}" for flag in flags if flag not in subs[sub]]
    assert seen > 40, seen  # the pattern still finds the docs' commands
    assert not wrong, "\n".join(wrong)
