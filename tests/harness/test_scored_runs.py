"""Scored-only runs: the leaderboard plans an untrained twin of each run, the worker hands it to a
scorer with its source, and ``score_run`` refuses inconsistent requests before touching anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.engine.run import score_run
from harness.leaderboard.plan import RunSpec, build_plan, scored_twin
from harness.leaderboard.worker import execute
from harness.plugins import MethodSpec
from harness.records import read_record

FAKE = """
import json
from pathlib import Path

def run(config, work_dir, data_root=None, cfg_options=None, resume=True, source='reproduced',
        checkpoint=None, **kw):
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    rec = dict(status='done', source=source, checkpoint=checkpoint, config=config)
    (Path(work_dir) / 'record.json').write_text(json.dumps(rec))
"""


def _spec(tmp_path: Path, split: int | None = None) -> RunSpec:
    return RunSpec(
        method='m',
        config='m_demo_regdb.py',
        dataset='regdb' if split else 'sysu',
        split=split,
        kind='demo',
        label='M (demo)',
        row=None,
        work_dir=str(tmp_path / 'runs' / 'm' / 'm_demo' / ('regdb-split1' if split else 'sysu')),
    )


def test_scored_twin_sits_beside_its_run(tmp_path: Path) -> None:
    run = _spec(tmp_path, split=1)
    twin = scored_twin(run)
    assert twin.source == 'untrained' and not twin.trains and run.trains
    assert twin.key == 'm/m_demo_regdb/regdb-split1-untrained'
    assert Path(twin.work_dir) == Path(run.work_dir).parent / 'regdb-split1-untrained'
    assert RunSpec.from_dict(json.loads(json.dumps(twin.to_dict()))) == twin  # crosses processes
    with pytest.raises(ValueError, match='scored-only run has source'):
        scored_twin(run, 'reproduced')


def test_plan_puts_untrained_twins_after_all_training_runs(tmp_path: Path) -> None:
    configs = tmp_path / 'configs'
    configs.mkdir()
    for name, base in (('m_demo_sysu', 'sysu'), ('m_demo_regdb', 'regdb')):
        (configs / f'{name}.py').write_text(
            f"protocol_base = '{base}'\nentry = dict(method='m', kind='demo', label='M (demo)')\n"
        )
    methods = {'m': MethodSpec(name='m', title='M', configs=configs)}
    runs = build_plan(methods, tmp_path, kinds=['demo'], regdb_splits=[1, 2], untrained=True)
    assert [r.source for r in runs] == ['reproduced'] * 3 + ['untrained'] * 3
    assert [r.key for r in runs[3:]] == [r.key + '-untrained' for r in runs[:3]]
    assert [r.key for r in build_plan(methods, tmp_path, kinds=['demo'], regdb_splits=[1])] == [
        'm/m_demo_regdb/regdb-split1',
        'm/m_demo_sysu/sysu',
    ]


def test_worker_hands_the_source_to_the_scorer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / 'fake_scorer.py').write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop('fake_scorer', None)
    run = _spec(tmp_path)
    for spec, source in ((run, 'reproduced'), (scored_twin(run), 'untrained')):
        outcome = execute(spec, runner='fake_scorer:run')
        assert outcome['status'] == 'done'
        assert read_record(spec.record_path)['source'] == source


def test_score_run_refuses_inconsistent_requests(tmp_path: Path) -> None:
    config = 'methods/agw/configs/agw_demo_regdb.py'
    with pytest.raises(ValueError, match='a reproduced record comes from run_experiment'):
        score_run(config, str(tmp_path), source='reproduced')
    with pytest.raises(ValueError, match='an untrained model has no checkpoint'):
        score_run(config, str(tmp_path), source='untrained', checkpoint='w.pth')
    with pytest.raises(ValueError, match='pass the weights to score'):
        score_run(config, str(tmp_path), source='official')
    with pytest.raises(FileNotFoundError, match='does not exist'):
        score_run(
            config, str(tmp_path), source='official', checkpoint=str(tmp_path / 'missing.pth')
        )
    assert not any(tmp_path.iterdir())  # nothing written
