"""The checks at the edge (autodistill/preflight.py), one by one through its public functions: each
passes a good input and refuses a bad one with one ConfigError naming the key, the value and the fix.
The same checks run end to end through the CLI in tests/test_bad_inputs.py."""

from __future__ import annotations

import os

import optuna
import pytest
from conftest import save_tiny_bert, tiny_bert_config

from autodistill import preflight
from autodistill.config.loader import load_distillation_section
from autodistill.errors import ConfigError, StorageError
from autodistill.objectives import objectives_for
from autodistill.space import SearchSpace
from autodistill.study.existing_study import check_existing_study
from autodistill.study.storage import open_existing_storage

SPACE = {"hidden_size": [8, 16], "num_hidden_layers": {"low": 1, "high": 2}, "num_attention_heads": [2]}


def space(mapping=None) -> SearchSpace:
    return SearchSpace.from_mapping(SPACE if mapping is None else mapping, source="search.search_space")


# -- folders and model locations --------------------------------------------------------------------
def test_a_writable_folder_may_be_missing_and_is_left_as_it_was(tmp_path):
    preflight.writable_folder(tmp_path / "new" / "deeper", key="output_dir")
    preflight.writable_folder(tmp_path, key="output_dir")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone, nothing was created


def test_a_folder_under_a_file_is_refused_with_the_key_and_its_flag(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^output_dir '.*file/run' is not a writable folder: '.*file' is a file; "
                                          r"give another output_dir \(or --output-dir\)$"):
        preflight.writable_folder(tmp_path / "file" / "run", key="output_dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match=r"cannot create a file in .*fix its permissions or give another "
                                              r"--storage$"):
            preflight.writable_folder(locked / "study", key="--storage")
    finally:
        locked.chmod(0o700)


def test_distills_output_is_new_empty_or_its_own_and_never_a_folder_it_reads(tmp_path):
    teacher = save_tiny_bert(tmp_path / "teacher")
    reads = {"teacher.model": str(teacher)}
    preflight.check_distill_output(tmp_path / "new", reads=reads, own_file="distill.json")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "distill.json").write_text("{}")
    preflight.check_distill_output(tmp_path / "own", reads=reads, own_file="distill.json")
    with pytest.raises(ConfigError, match=r"is the teacher.model folder .*; give a new or empty output_dir"):
        preflight.check_distill_output(teacher, reads=reads, own_file="distill.json")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"is not empty and holds no earlier `autodistill distill` run "
                                          r"\(no distill.json\)"):
        preflight.check_distill_output(tmp_path / "other", reads=reads, own_file="distill.json")


def test_a_model_location_is_a_saved_folder_or_a_hub_name(tmp_path):
    folder = save_tiny_bert(tmp_path / "teacher")
    preflight.model_location(str(folder), key="teacher.model")
    preflight.model_location("namespace/some-model", key="teacher.model")  # left to from_pretrained
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"")
    for location, message in ((tmp_path / "empty", "holds no config.json"),
                              (tmp_path / "weights.bin", "is a file, not a model folder"),
                              (tmp_path / "missing" / "model", "does not exist")):
        with pytest.raises(ConfigError, match=f"^teacher.model: .*{message}.*; give a folder written by "
                                              "save_pretrained"):
            preflight.model_location(str(location), key="teacher.model")


def test_model_config_reads_config_json_only(tmp_path):
    folder = save_tiny_bert(tmp_path / "teacher", layers=3)
    (folder / "model.safetensors").unlink()
    assert preflight.model_config(str(folder), key="teacher.model").num_hidden_layers == 3


# -- the machine and the inputs ---------------------------------------------------------------------
def test_devices_auto_and_cpu_pass_and_an_unknown_one_names_its_key():
    preflight.check_device("auto", key="auto_distillation.device")
    preflight.check_device("cpu", key="auto_distillation.device")
    with pytest.raises(ConfigError, match="auto_distillation.device"):
        preflight.check_device("tpu:3", key="auto_distillation.device")


def test_inputs_longer_than_the_position_embeddings_are_refused():
    config = tiny_bert_config()  # 32 positions
    preflight.check_sequence_length(config, 32, key="data.max_length", whose="the teacher's")
    preflight.check_sequence_length(config, None, key="data.max_length", whose="the teacher's")
    with pytest.raises(ConfigError, match=r"^data.max_length is 33 but the teacher's max_position_embeddings is 32: "
                                          r".*set data.max_length to 32 or less$"):
        preflight.check_sequence_length(config, 33, key="data.max_length", whose="the teacher's")


def test_attention_implementations_are_checked_on_the_meta_device():
    config = tiny_bert_config()
    preflight.check_attn_implementation("AutoModelForSequenceClassification", config, None, key="teacher.x")
    preflight.check_attn_implementation("AutoModelForSequenceClassification", config, "eager", key="teacher.x")
    with pytest.raises(ConfigError, match=r"^teacher.attn_implementation: 'no_such_kernel' cannot be used: "):
        preflight.check_attn_implementation("AutoModelForSequenceClassification", config, "no_such_kernel",
                                            key="teacher.attn_implementation")


# -- the student's values and the search space ------------------------------------------------------
def test_every_value_of_the_space_and_of_student_fixed_passes_the_builders_rules():
    base = tiny_bert_config()
    preflight.check_student_values(space(), base, {"intermediate_size": 32}, max_length=12)
    with pytest.raises(ConfigError, match=r"^auto_distillation.search.search_space.num_hidden_layers: low: "):
        preflight.check_student_values(space({"num_hidden_layers": {"low": 0, "high": 2}}), base, {}, max_length=12)
    with pytest.raises(ConfigError, match=r"^student.fixed.hidden_dropout_prob: "):
        preflight.check_student_values(None, base, {"hidden_dropout_prob": 1.5}, max_length=12)
    with pytest.raises(ConfigError, match=r"max_position_embeddings 8 is below the inputs' length 12 .*use at "
                                          r"least 12$"):
        preflight.check_student_values(space({"max_position_embeddings": [8, 64]}), base, {}, max_length=12)


def test_the_first_buildable_architecture_is_found_or_every_combination_is_named():
    base = tiny_bert_config()
    found = preflight.first_valid_architecture(space({"hidden_size": [6, 8], "num_attention_heads": [4]}), base, {})
    assert found == {"hidden_size": 8, "num_attention_heads": 4}
    with pytest.raises(ConfigError, match=r"has no valid architecture: none of the 2 combinations of hidden_size "
                                          r"\[6, 10\] and num_attention_heads \[4\] can be built"):
        preflight.first_valid_architecture(space({"hidden_size": [6, 10], "num_attention_heads": [4]}), base, {})
    with pytest.raises(ConfigError, match=r"the one combination of hidden_size \[6\] and num_attention_heads 4 "
                                          r"\(the teacher's config\)"):
        preflight.first_valid_architecture(space({"hidden_size": [6]}), base, {})


def test_a_continuous_space_is_not_enumerated():
    continuous = space({"hidden_size": [8], "hidden_dropout_prob": {"low": 0.0, "high": 0.5}})
    assert preflight.first_valid_architecture(continuous, tiny_bert_config(), {}) == {
        "hidden_size": 8, "hidden_dropout_prob": 0.0}
    huge = space({"hidden_size": {"low": 1, "high": 1000}, "num_attention_heads": {"low": 1, "high": 1000}})
    assert preflight.first_valid_architecture(huge, tiny_bert_config(), {}) is None


# -- layer mappings -----------------------------------------------------------------------------------
def mappings(student_path: str, teacher_path: str, blocks: str = "bert.encoder.layer.{i}"):
    return load_distillation_section({
        "flash_distillation": {"block_names": blocks, "train_steps": 1, "loss_types": ["MSE"],
                               "layer_mappings_for_knowledge_transfer": [[student_path, teacher_path]]},
        "regular_distillation": {"train_steps": 1}})


def test_mapped_modules_and_flash_blocks_exist_in_the_teacher_and_the_student():
    teacher = preflight.meta_model("AutoModelForSequenceClassification", tiny_bert_config(layers=4))
    student = preflight.meta_model("AutoModelForSequenceClassification", tiny_bert_config(layers=2))
    assert next(teacher.parameters()).is_meta
    good = mappings("bert.encoder.layer.{i}.output", "bert.encoder.layer.{t}.output")
    preflight.check_mapping_paths(good, teacher=teacher, student=student)
    preflight.check_mapping_paths(good, teacher=None, student=student)  # nothing to check against
    with pytest.raises(ConfigError, match=r"^auto_distillation.flash_distillation.layer_mappings_for_knowledge"
                                          r"_transfer: teacher has no module 'bert.encoder.layer.1.outputs'; closest"):
        preflight.check_mapping_paths(mappings("bert.encoder.layer.{i}.output", "bert.encoder.layer.{t}.outputs"),
                                      teacher=teacher, student=student)
    with pytest.raises(ConfigError, match=r"^auto_distillation.flash_distillation.block_names: "):
        preflight.check_mapping_paths(mappings("bert.encoder.layer.{i}.output", "bert.encoder.layer.{t}.output",
                                               blocks="bert.encoder.blocks.{i}"), teacher=teacher, student=student)


# -- an existing study ------------------------------------------------------------------------------
def test_a_study_keeps_its_search_space_and_a_new_one_no_earlier_students(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    objectives = objectives_for(["accuracy", "latency"], None)
    check_existing_study(url, "s", objectives=objectives, space=space())  # creates the database
    study = optuna.create_study(study_name="s", storage=url, directions=["maximize", "minimize"])
    trial = study.ask(space().distributions())
    study.tell(trial, [0.5, 1.0])
    check_existing_study(url, "s", objectives=objectives, space=space())
    with pytest.raises(ConfigError, match=r"study 's' searched hidden_size over \[8, 16\]; this config gives "
                                          r"\[8, 32\]\. A study keeps its search space"):
        check_existing_study(url, "s", objectives=objectives,
                                       space=space({**SPACE, "hidden_size": [8, 32]}))
    students = tmp_path / "trials" / "t"
    students.mkdir(parents=True)
    (students / "trial_0").mkdir()
    with pytest.raises(ConfigError, match=r"study 't' is not in storage .* holds students saved by an earlier "
                                          r"study of that name"):
        check_existing_study(url, "t", objectives=objectives, space=space(), students=students)


def test_a_foreign_sqlite_file_is_refused_and_left_unchanged(tmp_path):
    foreign = tmp_path / "notes.db"
    foreign.write_bytes(b"not a database, at least not Optuna's" * 10)
    before = foreign.read_bytes()
    with pytest.raises(StorageError, match=r"notes.db' is not an Optuna study database .*; give the --storage URL"):
        check_existing_study(f"sqlite:///{foreign}", "s", objectives=objectives_for(["accuracy"], None),
                                       space=space())
    assert foreign.read_bytes() == before


def test_a_database_another_worker_is_creating_is_waited_for_not_refused(tmp_path):
    """Two workers starting at once: Optuna writes its version tables after the others, so the
    second worker can find a database holding only some of them. It waits for the first worker's
    tables instead of refusing the database as foreign; a table set that stays partial is refused."""
    import sqlite3
    import threading

    db = tmp_path / "study.db"
    optuna.create_study(study_name="s", storage=f"sqlite:///{db}", direction="maximize")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        conn.execute("DROP TABLE alembic_version")

    def finish_creating():
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            conn.executemany("INSERT INTO alembic_version VALUES (?)", rows)

    url = f"sqlite:///{db}"
    with pytest.raises(StorageError, match="no table alembic_version"):  # show/report do not wait
        open_existing_storage(url, writable=True)
    late = threading.Timer(0.5, finish_creating)
    late.start()
    check_existing_study(url, "s", objectives=objectives_for(["accuracy"], None), space=space())
    late.join()
    assert [s.study_name for s in optuna.get_all_study_summaries(open_existing_storage(url))] == ["s"]



def test_distill_refuses_a_built_in_corpus_before_loading_anything(workspace, tmp_path, capsys):
    """`distill` reads data files only; a config naming data.corpus is one line, exit 2, nothing written."""
    from autodistill.cli import main

    config = tmp_path / "distill.yaml"
    config.write_text(f"""\
teacher: {{model: {workspace}/teacher}}
student: {{overrides: {{hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32}}}}
data: {{corpus: bbc_news, max_length: 12, batch_size: 16}}
distillation: {{progress: false, regular_distillation: {{train_steps: 1}}}}
output_dir: {tmp_path / "out"}
""")
    assert main(["distill", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("autodistill: error: data.corpus: `autodistill distill` reads "
                                                   "data.train_file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["distill.yaml"]
