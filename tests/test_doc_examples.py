"""Every ``vireid ...`` command the documentation shows exists as written.

The commands are collected from README.md, docs/*.md, the method READMEs and results/README.md:
each line of a fenced code block that runs ``vireid`` (``.venv/bin/vireid`` too, after ``&&``,
with ``\\`` continuations), and each inline code span that starts with ``vireid``. Nothing runs:

- a command of a code block must parse with the real ``vireid`` parser (``harness.cli``): its
  sub-command exists, every option is one that sub-command takes, values fit their type and
  choices, required options are there; ``vireid bench NAME`` options are parsed by that
  benchmark's own parser;
- every option a command or an inline span uses shows in its sub-command's ``--help``.

Documentation may write ``...`` for "the options above" and ``[--opt X]`` for an optional part.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.bench import BENCHMARKS, load_benchmark
from harness.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted(
    [ROOT / 'README.md', ROOT / 'results' / 'README.md']
    + list((ROOT / 'docs').glob('*.md'))
    + list((ROOT / 'methods').glob('*/README.md'))
)
FENCE = re.compile(r'^\s*```\s*(\w*)')
SHELL = ('', 'bash', 'sh', 'shell', 'console')  # code blocks of other languages show output
INLINE = re.compile(r'`((?:\S*/)?vireid [^`]+)`')
PROGRAM = re.compile(r'^(?:\S*/)?vireid$')


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    text: str
    block: bool  # from a code block (parsed in full) or an inline span (options checked)

    def __str__(self) -> str:
        return f'{self.path.relative_to(ROOT)}:{self.line}: {self.text}'


def examples(path: Path) -> list[Example]:
    """The ``vireid`` commands of one Markdown file."""
    found: list[Example] = []
    in_block, shell, pending, start = False, False, '', 0
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), start=1):
        fence = FENCE.match(line)
        if fence:
            in_block, pending = not in_block, ''
            shell = in_block and fence.group(1) in SHELL
            continue
        if not in_block:
            found += [Example(path, number, m.strip(), False) for m in INLINE.findall(line)]
            continue
        if not shell:
            continue
        text = line.strip()
        if pending:
            text = pending + ' ' + text
        else:
            start = number
        if text.endswith('\\'):
            pending = text[:-1]
            continue
        pending = ''
        for part in re.split(r'\s(?:&&|;|\|\|)\s', text.removeprefix('$ ')):
            if PROGRAM.match(part.split(' ', 1)[0]):
                found.append(Example(path, start, part.strip(), True))
    return found


def is_command(example: Example) -> bool:
    """Not a message the program prints (``vireid train: error: ...``), nor ``vireid ...``
    standing for any command."""
    words = example.text.split()
    return len(words) > 1 and not words[1].endswith(':') and words[1] != '...'


ALL = [e for path in DOCS for e in examples(path) if is_command(e)]


def tokens(example: Example) -> list[str]:
    """The command line after the program name: comments, output redirections and pipes cut,
    ``...`` dropped, the brackets of optional parts taken off."""
    words = shlex.split(example.text, comments=True)[1:]
    out = []
    for word in words:
        if word in ('|', '>', '>>', '2>&1', '&'):
            break
        if word == '...':
            continue
        if word.startswith('[') and not word.startswith('[-') and ']' in word:
            out.append(word)  # a value: [1,2]
            continue
        word = word.removeprefix('[')
        if word.count(']') > word.count('['):
            word = word[:-1]  # the end of an optional part: [--launcher slurm]
        out.append(word)
    return [w for w in out if w]


def subcommand(words: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The deepest (sub-)parser the words name, and the words naming it."""
    parser, path = build_parser(), []
    for word in words:
        if word.startswith('-'):
            continue
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or word not in subs[0].choices:
            break
        parser, path = subs[0].choices[word], [*path, word]
    if path[:1] == ['bench']:
        name = next((w for w in words[1:] if not w.startswith('-')), None)
        own = getattr(load_benchmark(name), 'build_parser', None) if name in BENCHMARKS else None
        if own is not None:
            parser, path = own(), ['bench', name]
    return parser, path


def options(words: list[str]) -> list[str]:
    return [w.split('=', 1)[0] for w in words if re.match(r'--?[a-zA-Z]', w)]


def parse(words: list[str]) -> str | None:
    """None when ``vireid WORDS`` parses as the program parses it, else argparse's message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args, extra = build_parser().parse_known_args(words)
            if args.command == 'bench':
                own = getattr(load_benchmark(args.name), 'build_parser', None)
                if own is not None:
                    own().parse_args(extra)
                    extra = []
            if extra:
                return f'unrecognized arguments: {" ".join(extra)}'
    except SystemExit as stop:
        if stop.code:
            return err.getvalue().strip().splitlines()[-1]
    return None


def test_the_documentation_has_examples_to_check():
    blocks = [e for e in ALL if e.block]
    assert len(blocks) > 50 and len(ALL) - len(blocks) > 30, (len(blocks), len(ALL))
    commands = {subcommand(tokens(e))[1][0] for e in blocks if subcommand(tokens(e))[1]}
    assert {'leaderboard', 'train', 'test', 'data', 'tables', 'new-method', 'score'} <= commands


@pytest.mark.parametrize('example', [e for e in ALL if e.block], ids=str)
def test_a_documented_command_parses(example: Example):
    words = tokens(example)
    assert words, f'{example}: no sub-command'
    problem = parse(words)
    assert problem is None, f'{example}\n  vireid {" ".join(words)}\n  {problem}'


@pytest.mark.parametrize('example', ALL, ids=str)
def test_every_documented_option_shows_in_its_help(example: Example):
    words = tokens(example)
    parser, path = subcommand(words)
    top = build_parser().format_help() + ' --debug'  # options every command takes
    assert path or all(o in top for o in options(words)), f'{example}: no vireid sub-command'
    shown = parser.format_help()
    missing = [o for o in options(words) if o not in shown and o not in top]
    assert not missing, f'{example}: `vireid {" ".join(path)} --help` does not show {missing}'


def test_the_checks_catch_a_stale_example(tmp_path: Path):
    doc = tmp_path / 'stale.md'
    doc.write_text(
        'Run `vireid train CONFIG --epochs 3` or:\n\n```bash\n'
        'vireid convert agw SRC DST --trusted   # fine\n'
        'vireid score F.npz --dataset regdb --root R --direction up\n'
        'vireid leaderbord --demo\n'
        'python3 -m venv .venv && .venv/bin/vireid bench train C --data-root D \\\n'
        '    --iterations 5\n```\n'
    )
    found = examples(doc)
    assert [(e.line, e.block) for e in found] == [
        (1, False),
        (4, True),
        (5, True),
        (6, True),
        (7, True),
    ]
    assert parse(tokens(found[1])) is None
    assert 'invalid choice' in parse(tokens(found[2]))
    assert 'invalid choice' in parse(tokens(found[3]))
    assert 'unrecognized arguments: --iterations' in parse(tokens(found[4]))
    parser, path = subcommand(tokens(found[0]))
    assert path == ['train'] and '--epochs' not in parser.format_help()
