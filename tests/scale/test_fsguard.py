"""The storage location guard: a database on a network file system is refused (exit 2, saying why) or, with
--allow-network-fs, only warned about; statfs is faked through the module's seam."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e_support import SIM_TOML
from reasonmed_async.cli import main
from reasonmed_async.scale import fsguard
from reasonmed_async.scale.fsguard import NetworkFilesystem, fs_magic, guard_database_location, network_fs_of

EXT4, TMPFS, XFS = 0xEF53, 0x01021994, 0x58465342


@pytest.mark.parametrize(("magic", "kind"), [
    (0x6969, "NFS"), (0xFF534D42, "CIFS"), (0xFE534D42, "SMB2"), (0x0BD00BD0, "Lustre"),
    (0x47504653, "GPFS (IBM Storage Scale)"), (0x00C36400, "CephFS"), (0x65735546, "FUSE (e.g. sshfs, s3fs, JuiceFS)"),
    (EXT4, None), (TMPFS, None), (XFS, None), (None, None),  # None: statfs unreadable (not Linux): allowed
])
def test_network_file_systems_are_told_by_their_statfs_magic(magic, kind, tmp_path) -> None:
    seen: list[str] = []
    assert network_fs_of(tmp_path / "new" / "run.db", statfs=lambda p: seen.append(p) or magic) == kind
    assert seen == [str(tmp_path)]  # the database does not exist yet: where it would be created is asked


def test_the_real_statfs_reads_this_machines_disk(tmp_path) -> None:
    magic = fs_magic(str(tmp_path))
    assert magic is not None and magic not in fsguard.NETWORK_FS  # the tests' tmp dir is on a local disk
    assert fs_magic("/proc") == 0x9FA0  # PROC_SUPER_MAGIC: f_type is read from the right place


def test_refused_with_the_reason_or_warned_when_allowed(tmp_path) -> None:
    db = tmp_path / "run.db"
    with pytest.raises(NetworkFilesystem, match=r"network file system \(Lustre\).*WAL.*local.*--allow-network-fs"):
        guard_database_location(db, statfs=lambda _p: 0x0BD00BD0)
    warnings: list[str] = []
    guard_database_location(db, allow_network_fs=True, statfs=lambda _p: 0x0BD00BD0, warn=warnings.append)
    assert len(warnings) == 1 and "Lustre" in warnings[0] and "WAL" in warnings[0]


def _questions(path: Path) -> Path:
    rows = [{"id": f"q-{i}", "question": f"Which vitamin deficiency causes scurvy (case {i})?",
             "options": ["Vitamin A", "Vitamin C", "Vitamin D", "Vitamin K"], "answer": "B"} for i in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_run_on_nfs_exits_2_and_creates_nothing(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(fsguard, "fs_magic", lambda _p: 0x6969)
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(SIM_TOML), "--input", str(_questions(tmp_path / "q.jsonl")), "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "NFS" in err and "WAL" in err and "Traceback" not in err
    assert not db.exists()


def test_run_with_allow_network_fs_warns_and_goes_on(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(fsguard, "fs_magic", lambda _p: 0x6969)
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(SIM_TOML), "--input", str(_questions(tmp_path / "q.jsonl")), "--db", str(db),
               "--allow-network-fs"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "warning" in err and "NFS" in err
    assert db.exists()
