"""LaTeX (booktabs) rendering of a table, ready to ``\\input`` into a paper, and a document that
holds them all (``tables.tex``, which compiles as written with ``pdflatex``).

Per column the best reproduced mean is bold and the second best underlined, as VI-ReID papers
mark them; the papers' numbers and this benchmark's rows sit in two blocks with a title row each.
Row notes become lettered notes under the table, so the tabular keeps to the numbers, and a table
wider than the text is scaled down to it. Written by hand rather than with ``DataFrame.to_latex``
so the output needs no jinja2 and gets the grouped headers (``\\multicolumn`` + ``\\cmidrule``),
blocks and marks exactly as wanted.
"""

from __future__ import annotations

from collections.abc import Iterable
from string import ascii_lowercase

from harness.tables.build import (
    COMPARABLE_MARK,
    OPTIMISTIC_MARK,
    QUOTED_MARK,
    Cell,
    Table,
    podium,
)

# What a document needs in its preamble for the tables (tables.tex loads them).
PACKAGES = ('booktabs', 'graphicx')

_ESCAPES = {
    '\\': r'\textbackslash{}',
    '&': r'\&',
    '%': r'\%',
    '$': r'\$',
    '#': r'\#',
    '_': r'\_',
    '{': r'\{',
    '}': r'\}',
    '~': r'\textasciitilde{}',
    '^': r'\textasciicircum{}',
    '→': r'$\to$',
    '±': r'$\pm$',
    '×': r'$\times$',
    '≤': r'$\leq$',
    '≥': r'$\geq$',
    '—': '---',
    '–': '--',
    '·': r'$\cdot$',
    '…': r'\ldots{}',
    COMPARABLE_MARK: r'$^{*}$',
    OPTIMISTIC_MARK: r'$^{\dagger}$',
    QUOTED_MARK: r'$^{\ddagger}$',
}


def escape(text: str) -> str:
    """``text`` as LaTeX source; characters pdflatex cannot typeset from UTF-8 become '?'."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 128 or (ord(ch) < 0x180 and ch.isalpha()):
            out.append(ch)  # Latin accented letters: LaTeX's default utf8 input has them
        else:
            out.append('?')
    return ''.join(out)


def _marks(cell: Cell) -> str:
    return ''.join(_ESCAPES[m] for m in cell.marks())


def _cell(cell: Cell | None, place: int) -> str:
    if cell is None:
        return ''
    num = cell.number()
    if place == 1:
        num = rf'\textbf{{{num}}}'
    elif place == 2:
        num = rf'\underline{{{num}}}'
    if cell.std is not None:
        num += rf' $\pm$ {cell.std:.2f}'
    return num + _marks(cell)


def _footnote(text: str) -> str:
    # A mark opening a footnote is its key: escape() turns it into the same superscript.
    return escape(text)


def to_latex(table: Table) -> str:
    lead = (['Row'] if table.row_ids else []) + ['Method', 'Source']
    n_lead = len(lead)
    width = n_lead + len(table.columns)
    # Column groups: consecutive columns of one (dataset, setting).
    groups: list[tuple[str, int, int]] = []
    for j, col in enumerate(table.columns):
        if groups and groups[-1][0] == col.group:
            groups[-1] = (col.group, groups[-1][1], j)
        else:
            groups.append((col.group, j, j))
    spec = 'l' * n_lead + ''.join(' ' + 'r' * (b - a + 1) for _, a, b in groups)
    top = ' & ' * (n_lead - 1)
    top += ''.join(rf' & \multicolumn{{{b - a + 1}}}{{c}}{{{escape(g)}}}' for g, a, b in groups)
    rules = ' '.join(rf'\cmidrule(lr){{{a + n_lead + 1}-{b + n_lead + 1}}}' for _, a, b in groups)
    names = ' & '.join(lead + [escape(c.metric) for c in table.columns]) + r' \\'
    best, second = podium(table)
    # Row notes as lettered notes under the table; rows with the same note share its letter.
    letters: dict[str, str] = {}
    for r in table.rows:
        if r.notes and r.notes not in letters:
            letters[r.notes] = _letter(len(letters))
    lines = [
        f'% {table.name}: written by `vireid tables` from run records; do not edit by hand.',
        f'% Needs \\usepackage{{{",".join(PACKAGES)}}} (tables.tex beside it compiles as is).',
        r'\begin{table*}[t]',
        r'\centering',
        r'\footnotesize',
        rf'\caption{{{escape(table.title)}}}',
        rf'\label{{tab:{table.name}}}',
        r'\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%',
        rf'\begin{{tabular}}{{{spec}}}',
        r'\toprule',
        top.strip() + r' \\',
        rules,
        names,
    ]
    for title, indices in table.blocks():
        lines.append(r'\midrule')
        if title:
            lines += [
                rf'\multicolumn{{{width}}}{{l}}{{\textit{{{escape(title)}}}}} \\',
                r'\midrule',
            ]
        for i in indices:
            r = table.rows[i]
            note = rf'$^{{\mathrm{{{letters[r.notes]}}}}}$' if r.notes else ''
            cells = ([escape(r.row_id or '')] if table.row_ids else []) + [
                escape(r.label),
                escape(r.source) + note,
            ]
            cells += [
                _cell(c, 1 if (i, j) in best else 2 if (i, j) in second else 0)
                for j, c in enumerate(r.cells)
            ]
            lines.append(' & '.join(cells) + r' \\')
    lines += [r'\bottomrule', r'\end{tabular}%', '}']
    foot = [f'$^{{\\mathrm{{{k}}}}}$ {escape(n)}' for n, k in letters.items()]
    foot += [_footnote(n) for n in table.footnotes]
    if best:
        foot.append(r'Bold: the best reproduced value of each column; underlined: the second best.')
    lines += [r'\par\smallskip\raggedright ' + f for f in foot]
    lines.append(r'\end{table*}')
    return '\n'.join(lines) + '\n'


def _letter(k: int) -> str:
    """a, b, ..., z, aa, ab, ...: the key of the k-th row note."""
    return _letter(k // 26 - 1) + ascii_lowercase[k % 26] if k >= 26 else ascii_lowercase[k]


def latex_document(names: Iterable[str]) -> str:
    """A document that inputs each table ``<name>.tex`` (in its folder): ``pdflatex tables.tex``
    shows them as a paper will."""
    inputs = '\n'.join(rf'\input{{{name}.tex}}' for name in names)
    return (
        '% written by `vireid tables`: the tables as a document (pdflatex tables.tex)\n'
        r'\documentclass{article}' + '\n'
        r'\usepackage[margin=2cm,landscape]{geometry}' + '\n'
        rf'\usepackage{{{",".join(PACKAGES)}}}' + '\n'
        r'\begin{document}' + '\n' + inputs + '\n' + r'\end{document}' + '\n'
    )
