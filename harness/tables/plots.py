"""CMC curves: one PNG per protocol setting, one curve per reproduced (non-ablation) entry."""
from __future__ import annotations

from pathlib import Path

from harness.tables.build import GROUPS, SETTINGS, Collection


def cmc_plots(coll: Collection, out_dir: str | Path) -> list[Path]:
    import matplotlib
    matplotlib.use('Agg')   # no display on servers; set before pyplot is imported
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    entries = sorted((e for e in coll.entries if e.kind != 'ablation'), key=lambda e: (e.label.lower(), e.kind))
    for dataset, settings in SETTINGS.items():
        for setting in settings:
            curves = [(e, e.cmc(dataset, setting)) for e in entries]
            curves = [(e, c) for e, c in curves if c]
            if not curves:
                continue
            fig, ax = plt.subplots(figsize=(5, 3.6), dpi=120)
            for e, c in curves:
                name = e.label + (' (demo)' if e.kind == 'demo' else '')
                ax.plot(range(1, len(c) + 1), c, marker='o', markersize=3, label=name)
            ax.set_xlabel('rank')
            ax.set_ylabel('matching rate (%)')
            title = GROUPS.get((dataset, setting), (f'{dataset} {setting}',))[0]
            ax.set_title(f'CMC: {title}' + ('' if dataset == 'regdb' else f' ({setting.split("-")[1]}-shot)'))
            ax.set_xlim(1, max(len(c) for _, c in curves))
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8, loc='lower right')
            fig.tight_layout()
            path = out_dir / f'cmc_{dataset}_{setting}.png'
            fig.savefig(path)
            plt.close(fig)
            written.append(path)
    return written
