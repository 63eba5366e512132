"""CMC curves: one PNG per protocol setting, one curve per (non-ablation) entry and record source.

A method's untrained curve is dashed in the colour of its trained one: the gap between the two is
what training bought.
"""

from __future__ import annotations

from pathlib import Path

from harness.tables.build import GROUPS, SETTINGS, Collection, Entry, ordered

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
