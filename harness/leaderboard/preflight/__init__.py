"""Everything a leaderboard's runs will need, checked and measured before any of them starts.

:func:`cheap_checks` (seconds: configs and protocol, data and the files the protocol needs,
ImageNet weights, disk) runs before every ``vireid leaderboard`` and ``--dry-run``;
:func:`run_preflight` (``--preflight``) adds the Slurm partition and the measured steps. Every
problem is one :class:`Finding` naming the file or setting and the fix.
"""

from harness.leaderboard.preflight.cheap import Checked, cheap_checks
from harness.leaderboard.preflight.findings import Finding, failing_runs, format_findings
from harness.leaderboard.preflight.report import PreflightReport, format_report, run_preflight

__all__ = [
    'Checked',
    'Finding',
    'PreflightReport',
    'cheap_checks',
    'failing_runs',
    'format_findings',
    'format_report',
    'run_preflight',
]
