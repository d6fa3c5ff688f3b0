"""AudioCraftEnvironment: team files, cluster choice, dora dir fallback, reference paths, mappers, partitions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from audiocraft.environment import AudioCraftEnvironment

TEAM = """
default:
  dora_dir: {root}/default_dora
  partitions: {{global: debug, team: debug}}
  reference_dir: {root}/ref
lab:
  dora_dir: {root}/lab_dora/${{oc.env:USER}}
  partitions: {{global: learn, team: labteam}}
  reference_dir: {root}/ref
  dataset_mappers:
    "^/datasets01/": "/mnt/data/"
  slurm_exclude: node1,node2
unwritable:
  dora_dir: /proc/definitely/not/writable
  partitions: {{global: a}}
"""


@pytest.fixture
def team_file(tmp_path) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(TEAM.format(root=tmp_path))
    (tmp_path / "ref" / "models").mkdir(parents=True)
    return path


def test_cluster_sections_and_overrides(team_file, tmp_path):
    env = AudioCraftEnvironment(
        environ={"AUDIOCRAFT_CONFIG": str(team_file), "AUDIOCRAFT_CLUSTER": "lab", "USER": "alice"}
    )
    assert env.cluster == "lab"
    assert env.get_slurm_partitions() == "learn"
    assert env.get_slurm_partitions(["global", "team"]) == "learn,labteam"
    assert env.get_slurm_exclude() == "node1,node2"
    assert env.apply_dataset_mappers("/datasets01/music/a.wav") == "/mnt/data/music/a.wav"
    assert env.get_dora_dir().parent == tmp_path / "lab_dora"
    assert env.resolve_reference_path("//reference/models/x.th") == tmp_path / "ref" / "models" / "x.th"
    assert env.resolve_reference_path("/abs/path") == Path("/abs/path")
    with pytest.raises(ValueError, match="'gpu'"):
        env.get_slurm_partitions(["gpu"])
    override = AudioCraftEnvironment(
        environ={
            "AUDIOCRAFT_CONFIG": str(team_file),
            "AUDIOCRAFT_CLUSTER": "lab",
            "AUDIOCRAFT_DORA_DIR": str(tmp_path / "mine"),
            "AUDIOCRAFT_REFERENCE_DIR": str(tmp_path),
        }
    )
    assert override.get_dora_dir() == tmp_path / "mine"
    assert override.get_reference_dir() == tmp_path


def test_detected_cluster_defaults_and_unknown_cluster_errors(team_file):
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team_file)})
    assert env.cluster == "default"  # this machine matches no section
    with pytest.raises(ValueError, match=r"'mars'.*\['default', 'lab', 'unwritable'\]"):
        AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team_file), "AUDIOCRAFT_CLUSTER": "mars"})
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": "/nowhere/missing.yaml"})


def test_unwritable_dora_dir_falls_back_to_temp_and_says_so_once(team_file, caplog):
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team_file), "AUDIOCRAFT_CLUSTER": "unwritable"})
    with caplog.at_level(logging.WARNING):
        first = env.get_dora_dir()
        second = env.get_dora_dir()
    assert first == second and "audiocraft_" in str(first)
    assert caplog.text.count("falling back to temporary folder") == 1


def test_missing_reference_dir_is_explained(team_file):
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team_file), "AUDIOCRAFT_CLUSTER": "unwritable"})
    with pytest.raises(ValueError, match="AUDIOCRAFT_REFERENCE_DIR"):
        env.resolve_reference_path("//reference/x")


def test_class_level_calls_read_the_environment_variables_at_call_time(team_file, tmp_path, monkeypatch):
    for key in ("AUDIOCRAFT_TEAM", "AUDIOCRAFT_DORA_DIR", "AUDIOCRAFT_REFERENCE_DIR", "SLURM_CLUSTER_NAME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AUDIOCRAFT_CONFIG", str(team_file))
    monkeypatch.setenv("AUDIOCRAFT_CLUSTER", "lab")
    monkeypatch.setenv("USER", "alice")
    env = AudioCraftEnvironment  # upstream grid files and notebooks use the class, never an instance
    assert env.get_slurm_partitions(["team", "global"]) == "labteam,learn"
    assert env.get_slurm_partitions() == "learn"
    assert env.get_team() == "default" and env.get_cluster() == "lab"
    assert env.get_dora_dir() == tmp_path / "lab_dora" / "alice"
    assert env.get_reference_dir() == tmp_path / "ref"
    assert env.resolve_reference_path("//reference/models/x.th") == tmp_path / "ref" / "models" / "x.th"
    assert env.apply_dataset_mappers("/datasets01/a.wav") == "/mnt/data/a.wav"
    assert env.get_slurm_exclude() == "node1,node2"
    assert isinstance(env.instance(), AudioCraftEnvironment) and env.instance() is not env.instance()
    # Nothing is cached between class-level calls: a changed variable is seen with or without reset().
    monkeypatch.setenv("AUDIOCRAFT_CLUSTER", "default")
    assert env.get_cluster() == "default" and env.get_slurm_partitions(["team", "global"]) == "debug,debug"
    assert env.reset() is None
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(tmp_path / "mine"))
    assert env.get_dora_dir() == tmp_path / "mine"
    monkeypatch.setenv("AUDIOCRAFT_CLUSTER", "mars")
    with pytest.raises(ValueError, match="'mars'"):
        env.get_team()
    # Instances stay injectable and ignore os.environ.
    injected = AudioCraftEnvironment(
        environ={"AUDIOCRAFT_CONFIG": str(team_file), "AUDIOCRAFT_CLUSTER": "lab", "USER": "bob"}
    )
    assert injected.get_cluster() == "lab" and injected.get_dora_dir() == tmp_path / "lab_dora" / "bob"
    assert injected.instance() is injected
    injected.reset()  # forgets the cached Dora directory of this instance
    assert injected.get_dora_dir() == tmp_path / "lab_dora" / "bob"


def test_class_level_signatures_match_upstream_classmethods():
    import inspect

    assert list(inspect.signature(AudioCraftEnvironment.get_slurm_partitions).parameters) == ["partition_types"]
    assert list(inspect.signature(AudioCraftEnvironment.resolve_reference_path).parameters) == ["path"]
    assert "comma separated" in AudioCraftEnvironment.get_slurm_partitions.__doc__


def test_cluster_detection_reads_the_injected_environment(team_file, monkeypatch):
    from audiocraft.utils.cluster import ClusterType, _guess_cluster_type, guess_cluster

    monkeypatch.setenv("SLURM_CLUSTER_NAME", "unwritable")
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    known = {"lab": {}, "unwritable": {}}
    assert guess_cluster(known, {"SLURM_CLUSTER_NAME": "lab"}) == "lab"
    assert guess_cluster(known, {}) == "default"
    assert guess_cluster(known) == "unwritable"  # os.environ when nothing is injected
    assert guess_cluster({}, {"SLURM_JOB_ID": "1"}) == "slurm"
    assert _guess_cluster_type({}) is ClusterType.DEFAULT and _guess_cluster_type() is ClusterType.SLURM
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team_file), "SLURM_CLUSTER_NAME": "lab"})
    assert env.cluster == "lab"
    assert AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team_file)}).cluster == "default"
