"""``vireid leaderboard --preflight`` and the cheap checks before every leaderboard: each fault a
first real run would meet, planted in a small synthetic stand-in, is reported in one line naming
it, fast, with exit 2 and nothing started; a clean plan is measured (one training step per config)
and projected; ``--dry-run`` marks the runs that would fail.

The ImageNet download and the free disk space are asked through one function each
(``weights.url_reachable``, ``disk.free_space``), replaced here: no test touches the network or
needs a small file system.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import time
from pathlib import Path

import pytest

from harness.leaderboard.preflight import disk as D
from harness.leaderboard.preflight import weights as W
from harness.leaderboard.preflight.findings import AREAS
from harness.plugins import MethodSpec, discover
from protocols.datasets.sysu import read_id_file

FAST_S = 60  # the bound for reporting a planted fault, on 2 loaded cores


@pytest.fixture(scope='module')
def methods():
    return discover()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """An empty decode-once cache and torch cache, and no network."""
    monkeypatch.setenv('VIREID_CACHE', str(tmp_path / 'cache'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(W, 'url_reachable', lambda url, timeout=5.0: False)
    return tmp_path


def _cli(argv: list[str]):
    from harness.cli import leaderboard as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    return cli, parser.parse_args(['leaderboard', *map(str, argv)])


def _run(argv, methods, capsys) -> tuple[int, str, float]:
    cli, args = _cli(argv)
    start = time.perf_counter()
    code = cli.run(args, methods=methods)
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    return code, captured.out + captured.err, seconds


def _agw_demo_sysu(out: Path, root: Path) -> list:
    return [
        '--preflight', '--out', out, '--methods', 'agw', '--configs', 'agw_demo_sysu',
        '--kinds', 'demo', '--data-root-sysu', root,
    ]  # fmt: skip


ERROR_LINE = re.compile(rf'\[({"|".join(AREAS)})\] (?!warning:|note:)')


def _error_lines(printed: str) -> list[str]:
    """The one-line problems of a report (remarks and progress lines left out)."""
    return [ln.strip() for ln in printed.splitlines() if ERROR_LINE.match(ln.strip())]


# --- planted faults -----------------------------------------------------------------------------


def _no_rand_perm(w):
    (w.sysu / 'exp' / 'rand_perm_cam.mat').unlink()
    return _agw_demo_sysu(w.out, w.sysu), ('[files]', 'exp/rand_perm_cam.mat', 'are missing')


def _truncated_test_image(w):
    test_ids = read_id_file(w.sysu / 'exp' / 'test_id.txt')
    victim = next(p for i in sorted(test_ids) for p in sorted(w.sysu.glob(f'cam3/{i:04d}/*.jpg')))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    rel = victim.relative_to(w.sysu).as_posix()
    return _agw_demo_sysu(w.out, w.sysu), ('[data]', rel, 'truncated')


def _train_id_without_images(w):
    train_id = read_id_file(w.sysu / 'exp' / 'train_id.txt')[0]
    for folder in w.sysu.glob(f'cam*/{train_id:04d}'):
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    says = ('[data]', 'exp/train_id.txt lists 1 id(s) with no image', f'[{train_id}]')
    return _agw_demo_sysu(w.out, w.sysu), says


def _regdb_idx_names_missing_image(w):
    line = (w.regdb / 'idx' / 'test_thermal_1.txt').read_text().splitlines()[3]
    image = line.rsplit(maxsplit=1)[0]
    (w.regdb / image).unlink()
    argv = [
        '--preflight', '--out', w.out, '--methods', 'agw', '--configs', 'agw_demo_regdb',
        '--kinds', 'demo', '--regdb-splits', '1', '--data-root-regdb', w.regdb,
    ]  # fmt: skip
    return argv, ('[files]', 'idx/test_thermal_1.txt:4', image, 'does not exist')


def _agw_demo_llcm(w) -> list:
    return [
        '--preflight', '--out', w.out, '--methods', 'agw', '--configs', 'agw_demo_llcm',
        '--kinds', 'demo', '--data-root-llcm', w.llcm,
    ]  # fmt: skip


def _llcm_train_list_names_missing_image(w):
    line = (w.llcm / 'idx' / 'train_nir.txt').read_text().splitlines()[2]
    image = line.rsplit(maxsplit=1)[0]
    (w.llcm / image).unlink()
    return _agw_demo_llcm(w), ('[data]', 'idx/train_nir.txt:3', image, 'does not exist')


def _llcm_test_folder_in_another_layout(w):
    # test_nir/<pid>/cam<K>/ (identity first) instead of the release's test_nir/cam<K>/<pid>/
    top = w.llcm / 'test_nir'
    for cam in sorted(p for p in top.iterdir() if p.name.startswith('cam')):
        for person in sorted(cam.iterdir()):
            (top / person.name).mkdir(exist_ok=True)
            person.rename(top / person.name / cam.name)
        cam.rmdir()
    says = ('[data]', str(top), 'holds no image', 'expected the LLCM release layout')
    return _agw_demo_llcm(w), says


def _protocol_change_in_config_file(w):
    folder = w.tmp / 'plugin' / 'configs'
    folder.mkdir(parents=True)
    (folder / 'tweaked_sysu.py').write_text(
        "method_base = 'agw/agw_demo_sysu'\n"
        "entry = dict(method='tweaked', kind='demo', label='Tweaked')\n"
        'protocol = dict(trials=3)\n'
    )
    w.methods = {'tweaked': MethodSpec(name='tweaked', title='Tweaked', configs=folder)}
    argv = ['--preflight', '--out', w.out, '--kinds', 'demo', '--data-root-sysu', w.sysu]
    return argv, ('[protocol]', 'tweaked_sysu.py', 'protocol.trials = 3 (protocol: 10)')


def _cache_disk_too_small(w):
    cache = Path(os.environ['VIREID_CACHE'])

    def free_space(path):  # VIREID_CACHE on its own 1 MB file system
        on_cache = Path(path).absolute().is_relative_to(cache)
        return (1, 1_000_000) if on_cache else (2, 10**15)

    w.monkeypatch.setattr(D, 'free_space', free_space)
    return _agw_demo_sysu(w.out, w.sysu), ('[disk]', 'not enough disk space', 'cache', str(cache))


def _weights_absent_offline(w):
    argv = [
        '--preflight', '--out', w.out, '--methods', 'agw', '--configs', 'agw_sysu',
        '--data-root-sysu', w.sysu,
    ]  # fmt: skip
    torch_cache = Path(os.environ['TORCH_HOME']) / 'hub' / 'checkpoints'
    return argv, ('[weights]', 'resnet50-', 'not in the torch cache', str(torch_cache))


FAULTS = {
    'missing rand_perm_cam.mat': _no_rand_perm,
    'truncated image in a test camera': _truncated_test_image,
    'training id without images': _train_id_without_images,
    'RegDB idx line naming a missing image': _regdb_idx_names_missing_image,
    'protocol change in a config file': _protocol_change_in_config_file,
    'cache disk too small': _cache_disk_too_small,
    'ImageNet weights absent offline': _weights_absent_offline,
    'LLCM training list naming a missing image': _llcm_train_list_names_missing_image,
    'LLCM test folder in another layout': _llcm_test_folder_in_another_layout,
}


class _World:
    def __init__(self, tmp, sysu, regdb, methods, monkeypatch, llcm=None):
        self.tmp, self.sysu, self.regdb, self.methods = tmp, sysu, regdb, methods
        self.llcm, self.out, self.monkeypatch = llcm, tmp / 'lb', monkeypatch


@pytest.mark.parametrize('fault', FAULTS, ids=list(FAULTS))
def test_planted_fault_is_one_line_exit_2_fast(
    fault, isolated, sysu_copy, regdb_copy, llcm_copy, methods, monkeypatch, capsys
):
    w = _World(isolated, sysu_copy, regdb_copy, methods, monkeypatch, llcm_copy)
    argv, says = FAULTS[fault](w)
    code, printed, seconds = _run(argv, w.methods, capsys)
    assert code == 2, printed
    errors = _error_lines(printed)
    assert len(errors) == 1, printed  # the planted fault, and nothing else
    assert all(fragment in errors[0] for fragment in says), (says, errors[0])
    assert 'measured steps: skipped' in printed
    assert seconds < FAST_S
    assert not (w.out / 'runs').exists()  # nothing started, no run directory written


def test_every_problem_is_reported_at_once(isolated, sysu_copy, methods, monkeypatch, capsys):
    w = _World(isolated, sysu_copy, None, methods, monkeypatch)
    says = [FAULTS[f](w)[1] for f in ('missing rand_perm_cam.mat', 'truncated image in a test '
            'camera', 'training id without images', 'cache disk too small')]  # fmt: skip
    code, printed, _ = _run(_agw_demo_sysu(w.out, w.sysu), methods, capsys)
    assert code == 2
    errors = _error_lines(printed)
    assert len(errors) == 4, printed
    for fragments in says:
        assert any(all(f in line for f in fragments) for line in errors), fragments


# --- a clean plan is measured -----------------------------------------------------------------


def test_clean_plan_is_measured_and_projected(isolated, sysu_root, methods, capsys):
    from harness.leaderboard import preflight

    runs, _ = preflight_plan(isolated / 'lb', sysu_root, methods)
    report = preflight.run_preflight(runs, stream=None)
    assert report.exit_code == 0, preflight.format_report(report)
    (m,) = report.measurements.values()
    assert m['batch_size'] == 64 and m['input_size'] == [64, 32] and len(m['step_s']) == 2
    assert m['peak_bytes'] > m['before_model_bytes'] > 0 and m['feature_dim'] == 256
    (p,) = report.projections
    assert p.iterations and p.iterations > 0
    assert p.train_s == pytest.approx(p.iterations * m['step_s'][-1])
    assert p.hours > p.train_s / 3600  # the test (extraction and evaluation) is added
    # The disk estimate of a checkpoint (a meta-device build, SGD momentum) is what one holds.
    ctx = report.checked.contexts[p.key]
    estimated = ctx.shape.state_bytes + D.optimizer_copies(ctx.cfg.optim_wrapper) * (
        ctx.shape.param_bytes
    )
    assert estimated == pytest.approx(m['checkpoint_bytes'], rel=0.01)
    text = preflight.format_report(report)
    assert 'agw_demo_sysu' in text and 'device-hours projected' in text
    assert not (isolated / 'lb' / 'runs').exists()


def preflight_plan(out: Path, sysu_root: Path, methods):
    from harness.leaderboard.options import LeaderboardOptions, plan_from_options

    _, args = _cli(_agw_demo_sysu(out, sysu_root))
    return plan_from_options(LeaderboardOptions.from_namespace(args), methods)


def test_a_failing_step_is_a_finding(isolated, sysu_root, methods):
    from harness.leaderboard import preflight

    runs, _ = preflight_plan(isolated / 'lb', sysu_root, methods)
    report = preflight.run_preflight(
        runs, stream=None, measure=lambda spec: {'error': 'killed by signal 9 (out of memory?)'}
    )
    assert report.exit_code == 2
    (finding,) = [f for f in report.findings if f.is_error]
    assert finding.area == 'measure' and 'agw_demo_sysu.py: a training step failed' in (
        finding.message
    )
    assert report.projections[0].hours is None


# --- the leaderboard and its dry run ----------------------------------------------------------


def test_leaderboard_stops_before_training_without_rand_perm(isolated, sysu_copy, methods, capsys):
    (sysu_copy / 'exp' / 'rand_perm_cam.mat').unlink()
    argv = _agw_demo_sysu(isolated / 'lb', sysu_copy)[1:]  # the same, without --preflight
    code, printed, _ = _run(argv, methods, capsys)
    assert code == 2
    assert 'rand_perm_cam.mat are missing' in printed and 'nothing was started' in printed
    assert not (isolated / 'lb' / 'runs').exists()


def test_dry_run_marks_runs_that_would_fail(isolated, sysu_root, methods, capsys):
    argv = [
        '--dry-run', '--out', isolated / 'lb', '--methods', 'agw', '--kinds', 'demo',
        '--datasets', 'sysu,regdb', '--regdb-splits', '1,2', '--data-root-sysu', sysu_root,
        '--data-root-regdb', isolated / 'no-regdb',
    ]  # fmt: skip
    code, printed, _ = _run(argv, methods, capsys)
    assert code == 2
    marked = [ln for ln in printed.splitlines() if 'WOULD FAIL (data)' in ln]
    assert len(marked) == 2 and all('regdb-split' in ln for ln in marked)
    assert 'agw/agw_demo_sysu/sysu ' in printed
    sysu_line = next(ln for ln in printed.splitlines() if 'agw/agw_demo_sysu/sysu ' in ln)
    assert 'WOULD FAIL' not in sysu_line
    assert f'RegDB root {isolated / "no-regdb"} does not exist' in printed
    # the same plan with a RegDB that exists: nothing would fail
    argv = argv[: argv.index('--data-root-regdb')]
    argv[argv.index('sysu,regdb')] = 'sysu'
    code, printed, _ = _run(argv, methods, capsys)
    assert code == 0 and 'WOULD FAIL' not in printed


def test_cached_image_lists_are_not_decoded_again(isolated, sysu_copy, methods, capsys):
    """A root's decode-once cache entry, once there, was decoded whole when it was written: a
    later leaderboard start does not decode it again (and counts no cache bytes for it). Before,
    the disk check counts exactly the entry the engine's datasets write."""
    from harness.data.cache import cache_bytes, list_entries
    from harness.data.datasets import cached_images
    from harness.leaderboard import preflight
    from protocols.datasets import load_dataset

    runs, _ = preflight_plan(isolated / 'lb', sysu_copy, methods)
    first = preflight.cheap_checks(runs)
    assert not first.errors and first.cache_files
    ctx = first.contexts[runs[0].key]
    ds = load_dataset('sysu', sysu_copy)
    [need] = [n for n in first.needs if n.what == 'cache']
    assert need.nbytes == cache_bytes(ctx.cfg, ds)
    for records in (ctx.lists.train, ctx.lists.test):
        cached_images(ds, records, ctx.cfg.input_size, resize_filter=ctx.cfg.resize_filter)
    [entry] = list_entries(need.folder)
    assert entry.path.stat().st_size == need.nbytes
    second = preflight.cheap_checks(runs)
    assert all(there for _, there, _ in second.cache_files.values())
    assert not [n for n in second.needs if n.what == 'cache']
    # a damaged image changes the entry's cache key (size, mtime): it is decoded, and found
    victim = ctx.lists.test[0]
    (sysu_copy / victim.path).write_bytes(b'not a jpeg')
    third = preflight.cheap_checks(runs)
    assert any(victim.path in f.message for f in third.errors)


# --- weights, disk, Slurm ---------------------------------------------------------------------


def test_weights_in_the_torch_cache_downloadable_or_missing(tmp_path, monkeypatch):
    import torch

    from harness.models.backbones.resnet import imagenet_file

    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    url, file = imagenet_file(50)
    assert file == tmp_path / 'torch' / 'hub' / 'checkpoints' / Path(url).name
    loads = {(50, None): ['agw_sysu']}
    [(finding, configs)] = W.check_weights(loads, reachable=lambda u: False)
    assert finding.is_error and configs == ('agw_sysu',) and str(file.parent) in finding.message
    [(finding, _)] = W.check_weights(loads, reachable=lambda u: True)
    assert finding.level == 'warning' and 'the first run downloads them' in finding.message
    file.parent.mkdir(parents=True)
    file.write_bytes(b'')
    [(finding, _)] = W.check_weights(loads, reachable=lambda u: True)
    assert finding.is_error and 'is empty' in finding.message
    torch.save({'conv1.weight': torch.zeros(1)}, file)
    assert W.check_weights(loads, reachable=lambda u: False) == []
    mine = tmp_path / 'mine.pth'
    [(finding, _)] = W.check_weights({(50, str(mine)): ['x_sysu']})
    assert finding.is_error and f'{mine}' in finding.message and 'does not exist' in finding.message


def test_disk_needs_are_summed_per_file_system(tmp_path, monkeypatch):
    fs = {'a': (1, 1000), 'b': (2, 10_000)}
    monkeypatch.setattr(D, 'free_space', lambda p: fs[Path(p).relative_to(tmp_path).parts[0][0]])
    needs = [
        D.Need(tmp_path / 'a-cache', 'cache', 600, ('r1',)),
        D.Need(tmp_path / 'a-runs' / 'r2', 'checkpoints', 600, ('r2',)),
        D.Need(tmp_path / 'b-runs' / 'r3', 'checkpoints', 9_500, ('r3',)),
    ]
    full, tight = D.check_disk(needs)
    assert full.is_error and full.runs == ('r1', 'r2') and '1.2 KB' in full.message
    assert tight.level == 'warning' and tight.runs == ('r3',) and '95%' in tight.message
    assert D.check_disk(needs[:1]) == []


FAKE_SINFO = """#!/bin/sh
case "$*" in
  *--format=%P*) echo "gpu*" ;;
  *%G*) echo "gpu:a100:4(S:0-1)|64|2-00:00:00"; echo "gpu:a100:2|32|2-00:00:00" ;;
esac
"""


def test_partition_offers_what_each_run_requests(tmp_path, monkeypatch):
    from harness.leaderboard.preflight.report import partition_findings
    from harness.leaderboard.slurm import parse_time_limit, partition_resources

    assert [parse_time_limit(t) for t in ('infinite', '2-00:00:00', '1:30:00', '45:30', '90')] == [
        None, 2880, 90, 46, 90,
    ]  # fmt: skip
    sinfo = tmp_path / 'bin' / 'sinfo'
    sinfo.parent.mkdir()
    sinfo.write_text(FAKE_SINFO)
    sinfo.chmod(sinfo.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv('PATH', f'{sinfo.parent}{os.pathsep}{os.environ["PATH"]}')
    assert partition_resources('gpu') == [
        dict(gpus=4, cpus=64, time_min=2880),
        dict(gpus=2, cpus=32, time_min=2880),
    ]
    assert partition_findings('gpu', 4, 64, 2880) == []
    findings = partition_findings('gpu', 8, 128, 4000)
    assert [f.area for f in findings] == ['slurm'] * 3 and all(f.is_error for f in findings)
    text = ' '.join(f.message for f in findings)
    assert '--gpus-per-run 8' in text and '--cpus-per-run 128' in text
    assert '--time-min 4000' in text and 'pass --time-min 2880 or less' in text


def test_memory_watchdog_stops_a_step_that_would_exhaust_the_machine():
    """On a CPU the measuring process stops itself, with one line, before it takes the memory the
    machine had (a shared machine is not pushed into its out-of-memory killer)."""
    import json
    import subprocess
    import sys

    from harness.leaderboard.preflight import measure as M

    code = (
        'import numpy as np\n'
        'from harness.leaderboard.preflight import measure as M\n'
        'M.watch_memory(M._resident() + 50_000_000, 55_000_000)\n'
        'x = np.ones(400_000_000 // 8)\n'  # 400 MB, past the 50 MB allowed
        'import time; time.sleep(5)\n'
        'print("not stopped")\n'
    )
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert done.returncode == M.EXIT_MEMORY, done.stdout + done.stderr
    line = done.stdout.strip().splitlines()[-1]
    error = json.loads(line.removeprefix(M.RESULT_PREFIX))['error']
    assert 'needs more memory than this machine had available (0.1 GB)' in error


def test_counts_other_than_the_release_are_a_remark(isolated, sysu_copy, methods):
    from harness.leaderboard import preflight
    from protocols.datasets.synthetic import MARKER

    runs, _ = preflight_plan(isolated / 'lb', sysu_copy, methods)
    (note,) = preflight.cheap_checks(runs).findings
    assert note.level == 'note' and 'a synthetic stand-in (expected)' in note.message
    assert 'training ids (train+val; release 395)' in note.message
    (sysu_copy / MARKER).unlink()  # the same counts in a folder that claims to be the release
    (warning,) = preflight.cheap_checks(runs).findings
    assert warning.level == 'warning' and 'results are not comparable' in warning.message


def test_a_config_that_cannot_load_stops_its_runs_only(isolated, sysu_root, methods):
    from harness.leaderboard import preflight
    from harness.leaderboard.plan import build_plan

    folder = isolated / 'plugin' / 'configs'
    folder.mkdir(parents=True)
    for stem, extra in (('good_sysu', ''), ('bad_sysu', "resize_filter = 'fancy'\n")):
        (folder / f'{stem}.py').write_text(
            "method_base = 'agw/agw_demo_sysu'\n"
            f"entry = dict(method='p', kind='demo', label='{stem}')\n" + extra
        )
    spec = {'p': MethodSpec(name='p', title='P', configs=folder)}
    runs = build_plan(spec, isolated / 'lb', kinds=('demo',), data_roots={'sysu': str(sysu_root)})
    checked = preflight.cheap_checks(runs)
    (error,) = checked.errors
    assert error.area == 'config' and "resize_filter = 'fancy'" in error.message
    assert error.runs == ('p/bad_sysu/sysu',)
    assert preflight.failing_runs(checked.findings, [r.key for r in runs]) == {
        'p/bad_sysu/sysu': ['config']
    }
