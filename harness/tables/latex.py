"""LaTeX (booktabs) rendering of a table; the best reproduced value of each column in bold.

Written by hand rather than with ``DataFrame.to_latex`` so the output needs no jinja2 and gets
grouped headers (``\\multicolumn`` + ``\\cmidrule``) and the bold cells exactly as wanted.
"""

from __future__ import annotations

from harness.tables.build import COMPARABLE_MARK, OPTIMISTIC_MARK, Cell, Table, best_cells

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
    OPTIMISTIC_MARK: r'$^{\dagger}$',
}


def escape(text: str) -> str:
    return ''.join(_ESCAPES.get(ch, ch) for ch in text)


def _marks(cell: Cell) -> str:
    return ('' if cell.comparable else '$^{' + COMPARABLE_MARK + '}$') + (
        r'$^{\dagger}$' if cell.optimistic else ''
    )


def _cell(cell: Cell | None, bold: bool) -> str:
    if cell is None:
        return ''
    num = f'{cell.mean:.2f}'
    if bold:
        num = rf'\textbf{{{num}}}'
    if cell.std is not None:
        num += rf' $\pm$ {cell.std:.2f}'
    return num + _marks(cell)


def _footnote(text: str) -> str:
    if text.startswith(COMPARABLE_MARK):
        return '$^{' + COMPARABLE_MARK + '}$' + escape(text[len(COMPARABLE_MARK) :])
    return escape(text)


def to_latex(table: Table) -> str:
    lead = (['Row'] if table.row_ids else []) + ['Method', 'Source']
    n_lead = len(lead)
    # Column groups: consecutive columns of one (dataset, setting).
    groups: list[tuple[str, int, int]] = []
    for j, col in enumerate(table.columns):
        if groups and groups[-1][0] == col.group:
            groups[-1] = (col.group, groups[-1][1], j)
        else:
            groups.append((col.group, j, j))
    spec = 'l' * n_lead + ''.join(' ' + 'r' * (b - a + 1) for _, a, b in groups) + ' l'
    top = ' & ' * (n_lead - 1)
    top += (
        ''.join(rf' & \multicolumn{{{b - a + 1}}}{{c}}{{{escape(g)}}}' for g, a, b in groups)
        + r' & \\'
    )
    rules = ' '.join(rf'\cmidrule(lr){{{a + n_lead + 1}-{b + n_lead + 1}}}' for _, a, b in groups)
    names = ' & '.join(lead + [escape(c.metric) for c in table.columns] + ['Notes']) + r' \\'
    best = best_cells(table)
    lines = [
        f'% {table.name}: written by `vireid tables` from run records; do not edit by hand',
        r'\begin{table}[t]',
        r'\centering',
        r'\footnotesize',
        rf'\caption{{{escape(table.title)}}}',
        rf'\label{{tab:{table.name}}}',
        rf'\begin{{tabular}}{{{spec}}}',
        r'\toprule',
        top.strip(),
        rules,
        names,
        r'\midrule',
    ]
    for i, r in enumerate(table.rows):
        cells = ([escape(r.row_id or '')] if table.row_ids else []) + [
            escape(r.label),
            escape(r.source),
        ]
        cells += [_cell(c, (i, j) in best) for j, c in enumerate(r.cells)] + [escape(r.notes)]
        lines.append(' & '.join(cells) + r' \\')
    lines += [r'\bottomrule', r'\end{tabular}']
    lines += [r'\par\smallskip\raggedright ' + _footnote(n) for n in table.footnotes]
    lines.append(r'\end{table}')
    return '\n'.join(lines) + '\n'
