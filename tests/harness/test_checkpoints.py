"""Checkpoints: safe whatever the environment says, strict with a likely cause, self-describing,
written atomically; a run that dies of a full disk keeps its last complete checkpoint."""

from __future__ import annotations

import errno
import json
import random
from pathlib import Path

import pytest
import torch

from harness.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointMismatchError,
    UnsafeCheckpointError,
    check_fit,
    describe_model,
    latest_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from protocols.datasets import TRAIN_CLASSES

ROOT = Path(__file__).resolve().parents[2]
TOY_CONFIGS = ROOT / 'tests' / 'fixtures' / 'toy_plugin' / 'vireid_toy' / 'configs'
TOY_SYSU, TOY_REGDB = TOY_CONFIGS / 'toy_sysu.py', TOY_CONFIGS / 'toy_regdb.py'
AGW_DEMO = ROOT / 'methods' / 'agw' / 'configs' / 'agw_demo_sysu.py'
FAST = {'sampler.num_instances': 8, 'train_dataloader.batch_size': 64}


class _Payload:
    """Unpickling this runs code: it creates the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), 'w'))


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    """(a .pth that would create ``marker`` if unpickled, marker)."""
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'crafted.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': {}, 'x': _Payload(marker)}, path)
    return path, marker


def test_a_crafted_pickle_never_runs_even_when_the_environment_asks_for_unsafe_loading(
    crafted, monkeypatch, tmp_path, toy_plugin
):
    from harness.api import load_model
    from harness.engine.run import score_checkpoint
    from methods.agw.convert import convert

    path, marker = crafted
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    for attempt in (
        lambda: read_checkpoint(path),
        lambda: load_checkpoint(path),
        lambda: load_model(TOY_SYSU, path),
        lambda: convert(str(path), str(tmp_path / 'out.pth')),
        lambda: score_checkpoint(str(TOY_SYSU), str(path), str(tmp_path / 'w')),
    ):
        with pytest.raises(UnsafeCheckpointError, match='pickled Python objects'):
            attempt()
        assert not marker.exists()
    # The file is a real exploit: an unsafe load (what the variable forced before) runs it.
    read_checkpoint(path, trusted=True)
    assert marker.exists()


@pytest.mark.parametrize(
    'content, says',
    [
        (b'', r'is empty \(0 bytes\)'),
        (bytes(range(256)), 'is not a PyTorch checkpoint'),
        (None, 'damaged or not a PyTorch checkpoint'),  # a torch.save file cut in half
    ],
)
def test_unreadable_files_name_the_file_and_the_fix(tmp_path, content, says):
    path = tmp_path / 'x.pth'
    if content is None:
        save_checkpoint({'w': torch.zeros(100)}, path)
        content = path.read_bytes()[:300]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=says) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_random_bytes_always_give_the_message(tmp_path):
    # The weights-only unpickler fails in many ways on garbage (UnpicklingError, IndexError, ...).
    path = tmp_path / 'x.pth'
    for seed in range(50):
        path.write_bytes(random.Random(seed).randbytes(200))
        with pytest.raises(CheckpointError, match='is not a PyTorch checkpoint'):
            read_checkpoint(path)


def _fit(model: torch.nn.Module, state: dict, meta: dict | None = None) -> str:
    with pytest.raises(CheckpointMismatchError) as err:
        check_fit(
            model, Checkpoint(Path('c.pth'), state, meta or {}), method='toy', config='cfg.py'
        )
    return str(err.value)


def test_strict_fit_names_keys_and_the_likely_cause(toy_plugin):
    from vireid_toy.model import ToyReID

    model = ToyReID(num_classes=10)
    state = model.state_dict()
    other_dataset = {
        **state,
        'classifier.weight': torch.zeros(395, 64),
        'classifier.bias': torch.zeros(395),
    }
    msg = _fit(model, other_dataset)
    assert 'different shape (2): classifier.weight: checkpoint (395, 64), model (10, 64)' in msg
    assert 'trained on another dataset' in msg and 'sysu 395' in msg
    other_method = {
        **{k: v for k, v in state.items() if not k.startswith('body')},
        'mmg.encode.weight': torch.zeros(3),
    }
    msg = _fit(model, other_method, describe_model('mmn', 10, 'mmn_sysu.py'))
    assert 'missing from the checkpoint (' in msg and 'body.0.weight' in msg
    assert 'unexpected in the checkpoint (1): mmg.encode.weight' in msg
    assert "the checkpoint is of method 'mmn', the config of 'toy'" in msg
    assert 'config mmn_sysu.py' in msg
    msg = _fit(model, other_method)  # no meta: the foreign module names it
    assert 'modules this model does not have (mmg)' in msg
    check_fit(model, Checkpoint(Path('c.pth'), dict(state)))  # exact: no error


def test_checkpoints_are_replaced_atomically(tmp_path, monkeypatch):
    path = save_checkpoint({'w': torch.ones(3)}, tmp_path / 'epoch_1.pth')

    def full_disk(obj, fh, *args, **kwargs):
        fh.write(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(torch, 'save', full_disk)
    with pytest.raises(OSError, match='No space left'):
        save_checkpoint({'w': torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path).state_dict['w'], torch.ones(3))  # the old one, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']  # no temporary left


def test_latest_checkpoint_survives_a_damaged_pointer(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    for n in (1, 2, 10):
        save_checkpoint({'w': torch.zeros(1)}, tmp_path / f'epoch_{n}.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert latest_checkpoint(tmp_path) == tmp_path / 'epoch_2.pth'
    (tmp_path / 'last_checkpoint').write_text('')  # written while the disk was full
    assert latest_checkpoint(tmp_path) == tmp_path / 'epoch_10.pth'
    (tmp_path / 'epoch_10.pth').write_bytes(b'')  # a file cut short is never chosen
    assert latest_checkpoint(tmp_path) == tmp_path / 'epoch_2.pth'


@pytest.mark.parametrize('config, dataset', [(TOY_SYSU, 'sysu'), (TOY_REGDB, 'regdb')])
def test_load_model_without_data_uses_the_protocol_class_count(toy_plugin, config, dataset):
    from harness.api import load_model

    model = load_model(config)  # the configs' data_root does not exist here
    assert (
        model.classifier.out_features
        == TRAIN_CLASSES[dataset]
        == {'sysu': 395, 'regdb': 206}[dataset]
    )


def _official_agw(harness_state: dict) -> dict:
    """Official embed_net names of an AGW harness state dict (the converter mapping reversed)."""
    from methods.agw.convert import PREFIXES

    out = {}
    for key, value in harness_state.items():
        if key.startswith('non_local.layer'):
            stage, rest = key[len('non_local.layer') :].split('.', 1)
            out[f'NL_{stage}.{rest}'] = value
            continue
        old, new = next((o, n) for o, n in PREFIXES if key.startswith(n))
        out[old + key[len(new) :]] = value
    return out


def test_converted_checkpoints_describe_themselves_and_load_with_no_extra_argument(tmp_path):
    from harness.api import load_model
    from harness.cli import main
    from harness.engine.config import config_hash, load_config
    from methods.agw.model import AGW

    torch.manual_seed(0)
    source = AGW(num_classes=395, backbone=dict(pretrained=False)).eval()
    torch.save(_official_agw(source.state_dict()), tmp_path / 'official.t')
    assert main(['convert', 'agw', str(tmp_path / 'official.t'), str(tmp_path / 'agw.pth')]) == 0
    meta = load_checkpoint(tmp_path / 'agw.pth').meta
    # The full config the tensors fit (found by the protocol's 395 classes), with its hash.
    config = ROOT / 'methods' / 'agw' / 'configs' / 'agw_sysu.py'
    assert meta['method'] == 'agw' and meta['num_classes'] == 395 and meta['dataset'] == 'sysu'
    assert meta['config_name'] == 'agw_sysu.py' and meta['config_hash'] == config_hash(
        load_config(config)
    )
    model = load_model(config, tmp_path / 'agw.pth')  # no num_classes=..., no dataset
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(model.extract_feat(x, 'infrared'), source.extract_feat(x, 1))


def test_resume_reads_strictly_through_the_harness(toy_plugin, sysu_root, tmp_path):
    """mmengine's resume loads non-strictly by itself; the harness Runner refuses a mismatch."""
    from vireid_toy.model import ToyReID

    from harness.engine.run import run_experiment

    work = tmp_path / 'run'
    other = ToyReID(num_classes=38, width=4)  # another width: every tensor mis-shaped
    save_checkpoint(
        {'state_dict': other.state_dict(), 'meta': {'epoch': 1, 'iter': 1}, 'message_hub': None},
        work / 'epoch_1.pth',
    )
    (work / 'last_checkpoint').write_text(str(work / 'epoch_1.pth'))
    with pytest.raises(CheckpointMismatchError, match=r'different shape \(\d+\): stems.0.weight'):
        run_experiment(
            str(TOY_SYSU),
            str(work),
            data_root=str(sysu_root),
            cfg_options=FAST,
            resume=True,
            log_level='WARNING',
        )
    assert json.loads((work / 'record.json').read_text())['status'] == 'failed'


def test_a_full_disk_fails_the_run_cleanly_and_it_resumes_from_the_last_complete_checkpoint(
    toy_plugin, sysu_root, tmp_path, monkeypatch, capsys
):
    from mmengine.fileio.backends.local_backend import LocalBackend

    from harness.cli import main

    put = LocalBackend.put

    def disk_fills_at_epoch_2(self, obj, filepath):
        if '.epoch_2.pth.' in str(filepath):
            with open(filepath, 'wb') as fh:
                fh.write(obj[: len(obj) // 2])
            raise OSError(errno.ENOSPC, 'No space left on device', str(filepath))
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', disk_fills_at_epoch_2)
    work = tmp_path / 'run'
    argv = [
        'train',
        str(TOY_SYSU),
        '--work-dir',
        str(work),
        '--data-root',
        str(sysu_root),
        '--cfg-options',
        'train_cfg.max_epochs=2',
        'sampler.num_instances=8',
        'train_dataloader.batch_size=64',
        'log.interval=100',
    ]
    assert main(argv) == 1  # a failed run
    err = capsys.readouterr().err
    assert 'the run failed: No space left on device' in err and 'Traceback' not in err
    assert f'{work / "epoch_1.pth"} is kept; continue from it with --resume' in err
    record = json.loads((work / 'record.json').read_text())
    assert record['status'] == 'failed' and 'No space left on device' in record['error']['message']
    assert record['checkpoint'] == str(work / 'epoch_1.pth')
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']  # no truncated epoch_2
    assert not list(work.glob('.*.tmp'))
    load_checkpoint(work / 'epoch_1.pth')  # complete and loadable
    monkeypatch.setattr(LocalBackend, 'put', put)
    assert main(argv + ['--resume']) == 0
    record = json.loads((work / 'record.json').read_text())
    assert record['status'] == 'done' and record['checkpoint'].endswith('epoch_2.pth')
    meta = load_checkpoint(work / 'epoch_2.pth').meta  # trained checkpoints describe themselves
    assert (
        meta['method'] == 'toy'
        and meta['num_classes'] == 38
        and meta['config_name'] == 'toy_sysu.py'
    )
    assert meta['config_hash'] == record['config_hash']
