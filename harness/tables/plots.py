"""The tables' pictures: CMC curves (one PNG per protocol setting, one curve per non-ablation entry
and record source) and the dot plot (every method's numbers side by side, ``dotplot.png``).

A method's untrained curve is dashed in the colour of its trained one: the gap between the two is
what training bought.
"""

from __future__ import annotations

from pathlib import Path

from harness.tables.build import (
    GROUPS,
    SETTINGS,
    Collection,
    Column,
    Entry,
    Reported,
    grouped,
    matched_reported,
    ordered,
)

LINE_STYLES = {'reproduced': '-', 'official': '-.', 'untrained': '--'}


def curve_label(entry: Entry) -> str:
    """Legend text: the entry label, '(demo)' once, and the source unless it is 'reproduced'."""
    name = entry.label
    if entry.kind == 'demo' and '(demo)' not in name:
        name += ' (demo)'
    return name if entry.source == 'reproduced' else f'{name} {entry.source}'


def cmc_plots(coll: Collection, out_dir: str | Path) -> list[Path]:
    import matplotlib

    matplotlib.use('Agg')  # no display on servers; set before pyplot is imported
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    entries = ordered(coll.entries)[0]
    for dataset, settings in SETTINGS.items():
        for setting in settings:
            curves = [(e, e.cmc(dataset, setting)) for e in entries]
            curves = [(e, c) for e, c in curves if c]
            if not curves:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
            colours: dict[tuple, str] = {}
            for e, c in curves:
                style = LINE_STYLES.get(e.source, '-')
                colour = colours.get(e.group)
                (line,) = ax.plot(
                    range(1, len(c) + 1),
                    c,
                    style,
                    marker='o',
                    markersize=3,
                    color=colour,
                    label=curve_label(e),
                )
                colours.setdefault(e.group, line.get_color())
            ax.set_xlabel('rank')
            ax.set_ylabel('matching rate (%)')
            title = GROUPS.get((dataset, setting), (f'{dataset} {setting}',))[0]
            shots = f' ({setting.split("-")[1]}-shot)' if dataset == 'sysu' else ''
            ax.set_title(f'CMC: {title}{shots}')
            ax.set_xlim(1, max(len(c) for _, c in curves))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # ranks are integers
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8, loc='lower right')
            fig.tight_layout()
            path = out_dir / f'cmc_{dataset}_{setting}.png'
            fig.savefig(path)
            plt.close(fig)
            written.append(path)
    return written


# The dot plot: per source a marker, and where in a method's band it sits (papers on top).
DOT_STYLES = {
    'reported': dict(marker='D', color='black', offset=-0.27, label='reported (paper)'),
    'official': dict(marker='s', color='tab:purple', offset=-0.09, label='re-scored (official)'),
    'reproduced': dict(marker='o', color='tab:blue', offset=0.09, label='reproduced'),
    'untrained': dict(marker='x', color='tab:gray', offset=0.27, label='untrained'),
}
DOT_METRICS = ('R1', 'mAP')
DOT_PLOT_NAME = 'dotplot.png'


def dot_points(
    coll: Collection, reported: list[Reported], dataset: str, setting: str, metric: str
) -> list[tuple[str, list[tuple[str, float, float | None, bool]]]]:
    """``[(method label, [(source, value, std or None, quoted), ...]), ...]`` for one panel: the
    non-ablation entries in table order, each with its papers' numbers (never beside a demo
    entry: those ran on synthetic data) and its records' means ± std."""
    out = []
    column = Column(dataset, setting, metric)
    for group in grouped(ordered(coll.entries)[0]):
        points: list[tuple[str, float, float | None, bool]] = []
        if group[0].kind != 'demo':
            for r in matched_reported(group[0], reported):
                if (r.dataset, r.setting) == (dataset, setting) and metric in r.values:
                    points.append(('reported', r.values[metric], None, r.quoted))
        for e in group:
            cell = e.cell(column)
            if cell is not None:
                points.append((e.source, cell.mean, cell.std, False))
        if any(source != 'reported' for source, *_ in points):
            out.append((curve_label(group[0]).removesuffix(f' {group[0].source}'), points))
    return out


def dot_plot(coll: Collection, reported: list[Reported], out_dir: str | Path) -> Path | None:
    """``dotplot.png``: one panel per (dataset, setting) with runs and metric (R1, mAP); per method
    a band with its reported, re-scored, reproduced (mean ± std over trials or splits) and
    untrained numbers. None when no run has a number to draw."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = []
    known = [(d, s) for d, settings in SETTINGS.items() for s in settings]
    # The tables' column order first (all-search, indoor-search, multi-shot, RegDB), then the rest.
    for dataset, setting in [k for k in GROUPS if k in known] + [
        k for k in known if k not in GROUPS
    ]:
        for metric in DOT_METRICS:
            points = dot_points(coll, reported, dataset, setting, metric)
            if points:
                panels.append((dataset, setting, metric, points))
    if not panels:
        return None
    ncols = len(DOT_METRICS)
    nrows = -(-len(panels) // ncols)
    n_methods = max(len(p[3]) for p in panels)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(5.2 * ncols, 0.9 + nrows * (0.8 + 0.45 * n_methods)),
        dpi=110,
        squeeze=False,
    )
    seen: set[str] = set()
    for ax, (dataset, setting, metric, points) in zip(axes.flat, panels, strict=False):
        labels = [label for label, _ in points]
        for y, (_, dots) in enumerate(points):
            for source, value, std, quoted in dots:
                style = DOT_STYLES.get(source, DOT_STYLES['reproduced'])
                filled = style['marker'] != 'x' and not quoted
                ax.errorbar(
                    value,
                    y + style['offset'],
                    xerr=std,
                    fmt=style['marker'],
                    color=style['color'],
                    markerfacecolor=style['color'] if filled else 'none',
                    markersize=6,
                    capsize=3,
                    label=style['label'] if source not in seen else None,
                )
                seen.add(source)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(len(labels) - 0.5, -0.5)  # first method on top, as in the tables
        ax.set_xlabel(f'{metric} (%)')
        ax.set_title(f'{GROUPS.get((dataset, setting), (setting,))[0]}: {metric}', fontsize=10)
        ax.grid(True, axis='x', alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, names = [], []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
            if n not in names:
                handles.append(h)
                names.append(n)
    if any(q for *_, points in panels for _, dots in points for *_, q in dots):
        names = [
            n + ' (hollow: quoted)' if n == DOT_STYLES['reported']['label'] else n for n in names
        ]
    fig.legend(handles, names, loc='upper center', ncol=len(names), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    out = Path(out_dir) / DOT_PLOT_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
