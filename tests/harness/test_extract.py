"""``vireid extract`` + ``vireid score`` give ``vireid test``'s numbers for the same checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from harness.api import load_model
from harness.cli import main
from harness.data.datasets import train_set
from protocols.evaluation import test_records
from protocols.scoring import load_features

TOY_CONFIGS = (
    Path(__file__).resolve().parents[1] / 'fixtures' / 'toy_plugin' / 'vireid_toy' / 'configs'
)


def _checkpoint(config: Path, root: Path, path: Path, split: int = 1, seed: int = 0) -> str:
    """A harness-style checkpoint of the config's model with random weights (any weights will do:
    the claim is that two routes give the same numbers for the same file)."""
    dataset = 'sysu' if config.stem.endswith('sysu') else 'regdb'
    num_classes = train_set(
        dataset, root, {'dataset': dataset, **({'split': split} if dataset == 'regdb' else {})}
    ).num_classes
    torch.manual_seed(seed)
    model = load_model(config, num_classes=num_classes)
    state = {
        k: v + 0.1 * torch.randn_like(v) if v.is_floating_point() else v
        for k, v in model.state_dict().items()
    }
    torch.save({'state_dict': state, 'meta': {'num_classes': num_classes}}, path)
    return str(path)


KEYS = ('R1', 'R5', 'R10', 'R20', 'mAP', 'mINP')


def _score(feats: Path, root: Path, out: Path, *options: str) -> dict:
    assert main(['score', str(feats), '--root', str(root), '--json', str(out), *options]) == 0
    return json.loads(out.read_text())


def _same(scored: dict, tested: dict) -> bool:
    return all(abs(scored['mean'][k] - tested['mean'][k]) < 1e-9 for k in KEYS) and len(
        scored['per_trial']
    ) == len(tested['per_trial'])


def test_extract_and_score_reproduce_vireid_test_on_sysu(toy_plugin, sysu_root, tmp_path, capsys):
    ckpt = _checkpoint(TOY_CONFIGS / 'toy_sysu.py', sysu_root, tmp_path / 'ckpt.pth')
    assert (
        main(
            [
                'test',
                'toy_sysu',
                ckpt,
                '--data-root',
                str(sysu_root),
                '--json',
                str(tmp_path / 't.json'),
                '--work-dir',
                str(tmp_path / 'test'),
            ]
        )
        == 0
    )
    tested = json.loads((tmp_path / 't.json').read_text())['results']
    feats = tmp_path / 'feats.npz'
    # A config name, as OpenMMLab users type it, resolved through the installed toy plugin.
    assert (
        main(['extract', 'toy_sysu', ckpt, '--data-root', str(sysu_root), '--out', str(feats)]) == 0
    )
    printed = capsys.readouterr().out
    assert '--mode indoor --shots 10 --sampler official' in printed

    paths, matrix = load_features(feats)
    assert paths == [r.path for r in test_records('sysu', sysu_root)] and matrix.dtype == np.float32
    for mode in ('all', 'indoor'):
        for shots in (1, 10):
            setting = f'{mode}-{"single" if shots == 1 else "multi"}'
            scored = _score(
                feats,
                sysu_root,
                tmp_path / f'{setting}.json',
                '--dataset',
                'sysu',
                '--mode',
                mode,
                '--shots',
                str(shots),
            )
            assert _same(scored, tested[setting]), setting
            assert scored['per_trial'] == tested[setting]['per_trial'], setting

    # The comparison can fail: the same config with other weights scores differently.
    other_ckpt = _checkpoint(TOY_CONFIGS / 'toy_sysu.py', sysu_root, tmp_path / 'other.pth', seed=1)
    assert (
        main(
            [
                'extract',
                str(TOY_CONFIGS / 'toy_sysu.py'),
                other_ckpt,
                '--data-root',
                str(sysu_root),
                '--out',
                str(tmp_path / 'other.npz'),
            ]
        )
        == 0
    )
    other = _score(tmp_path / 'other.npz', sysu_root, tmp_path / 'o.json', '--dataset', 'sysu')
    assert not _same(other, tested['all-single'])


def test_extract_on_a_regdb_split_matches_its_test(toy_plugin, regdb_root, tmp_path, capsys):
    config = str(TOY_CONFIGS / 'toy_regdb.py')
    ckpt = _checkpoint(TOY_CONFIGS / 'toy_regdb.py', regdb_root, tmp_path / 'ckpt.pth', split=2)
    assert (
        main(
            [
                'test',
                config,
                ckpt,
                '--data-root',
                str(regdb_root),
                '--cfg-options',
                'protocol.split=2',
                '--json',
                str(tmp_path / 't.json'),
                '--work-dir',
                str(tmp_path / 'test'),
            ]
        )
        == 0
    )
    tested = json.loads((tmp_path / 't.json').read_text())['results']
    feats = tmp_path / 'feats.npz'
    assert (
        main(
            [
                'extract',
                config,
                ckpt,
                '--data-root',
                str(regdb_root),
                '--split',
                '2',
                '--out',
                str(feats),
            ]
        )
        == 0
    )
    for direction in ('v2t', 't2v'):
        scored = _score(
            feats,
            regdb_root,
            tmp_path / f'{direction}.json',
            '--dataset',
            'regdb',
            '--split',
            '2',
            '--direction',
            direction,
        )
        assert (
            _same(scored, tested[direction])
            and scored['per_trial'] == tested[direction]['per_trial']
        )
    # Split 1's images are another test set: the features of split 2 do not cover it.
    assert (
        main(['score', str(feats), '--root', str(regdb_root), '--dataset', 'regdb', '--split', '1'])
        == 2
    )
    assert 'not test images of regdb split 1' in capsys.readouterr().err


def test_extract_errors_are_plain_and_name_the_fix(toy_plugin, sysu_root, tmp_path, capsys):
    assert main(['extract', 'toy_sysux', 'c.pth', '--out', str(tmp_path / 'f.npz')]) == 2
    err = capsys.readouterr().err
    assert 'did you mean toy_sysu' in err and "'" not in err.split('error: ', 1)[1][:5]
    assert (
        main(
            [
                'extract',
                'toy_sysu',
                'c.pth',
                '--data-root',
                str(sysu_root),
                '--split',
                '2',
                '--out',
                str(tmp_path / 'f.npz'),
            ]
        )
        == 2
    )
    assert '--split applies to RegDB' in capsys.readouterr().err
