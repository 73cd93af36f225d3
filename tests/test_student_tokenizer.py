"""A student tokenizer other than the teacher's (`student.tokenizer`, issue 15): both inputs from one
data set, logit KD across vocabularies, the teacher cache keyed on the teacher's inputs, students
built for their own vocabulary, and the refusals (feature mappings, token tasks, a tokenizer that
cannot be loaded, the supernet) before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_bert
from test_bad_inputs import (
    DISTILL_YAML,
    SEARCH_YAML,
    Case,
    _existing_run,
    assert_refused,
    no_training,  # noqa: F401  (the harness's fixture)
)
from transformers import BertTokenizerFast

from autodistill.cli import main
from autodistill.data import PairedInputs, TokenizedDataset, make_loader, read_text_file
from autodistill.data.adaptor import DataAdaptor
from autodistill.distill.distiller import Distiller
from autodistill.distill.teacher_cache import LOGITS, TeacherCache
from autodistill.errors import MappingError
from autodistill.models.builders import with_vocabulary
from autodistill.models.init_from_teacher import init_from_teacher

# the student's pieces: the sentiment words split into two sub-words each, other ids than the teacher's
STUDENT_PIECES = ["very", "acting", "plot", "was", "film", "the", "go", "##od", "gr", "##eat", "fi", "##ne",
                  "ba", "##d", "aw", "##ful", "po", "##or"]
REGULAR_ONLY = ("  flash_distillation:\n    block_names: [bert.encoder.layer.0]\n"
                "    layer_mappings_for_knowledge_transfer:\n"
                "      - - [bert.encoder.layer.0.output, bert.encoder.layer.1.output]\n    train_steps: [1]\n")
SEARCH_FLASH = ("  flash_distillation:\n    block_names: bert.encoder.layer.{i}\n"
                "    layer_mappings_for_knowledge_transfer:\n"
                "      - ['bert.encoder.layer.{i}.output', 'bert.encoder.layer.{t}.output']\n"
                "    loss_types: [MSE]\n    train_steps: 1\n")


def student_tokenizer_folder(root: Path) -> Path:
    folder = root / "student_tokenizer"
    if not folder.exists():
        folder.mkdir()
        (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *STUDENT_PIECES])
                                          + "\n")
        BertTokenizerFast.from_pretrained(str(folder)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizers(workspace, tmp_path_factory):
    teacher = BertTokenizerFast.from_pretrained(str(workspace / "teacher"))
    student = BertTokenizerFast.from_pretrained(str(student_tokenizer_folder(tmp_path_factory.mktemp("tok"))))
    return teacher, student


@pytest.fixture(scope="module")
def paired(workspace, tokenizers):
    texts = read_text_file(workspace / "train.csv")
    teacher_tok, student_tok = tokenizers
    return PairedInputs(TokenizedDataset(texts, teacher_tok, max_length=12),
                        TokenizedDataset(texts, student_tok, max_length=12))


def test_each_model_reads_its_own_tokens_from_one_batch(paired, tokenizers):
    batch = next(iter(make_loader(paired, batch_size=4, shuffle=False)))
    adaptor = DataAdaptor()
    teacher_inputs = adaptor.teacher_inputs(batch).kwargs
    student_inputs = adaptor.student_inputs(batch, with_labels=True).kwargs
    assert adaptor.separate_inputs(batch) and not any(k.startswith("student_") for k in teacher_inputs)
    assert torch.equal(teacher_inputs["input_ids"], paired.teacher.tensors["input_ids"][:4])
    assert torch.equal(student_inputs["input_ids"], paired.student.tensors["input_ids"][:4])
    assert torch.equal(student_inputs["labels"], batch["labels"]) and "example_index" not in student_inputs
    # "good" is one teacher token and two student tokens: the positions do not correspond
    assert len(tokenizers[1].tokenize("good")) == 2 and len(tokenizers[0].tokenize("good")) == 1


def test_the_teacher_cache_keys_on_the_teachers_inputs(paired, workspace, tokenizers, tmp_path):
    teacher = tiny_bert(vocab=len(tokenizers[0]), seed=0)
    texts = read_text_file(workspace / "train.csv")
    other_student = PairedInputs(paired.teacher, TokenizedDataset(texts, tokenizers[0], max_length=12))
    first = TeacherCache(teacher, paired, root=tmp_path)
    first.ensure([LOGITS])
    again = TeacherCache(teacher, other_student, root=tmp_path)
    again.ensure([LOGITS])
    assert first.directory == again.directory == TeacherCache(teacher, paired.teacher, root=tmp_path).directory
    assert first.built == [LOGITS] and again.built == []  # another student tokenizer: a hit
    other_teacher_inputs = TokenizedDataset(texts, tokenizers[1], max_length=12)
    assert TeacherCache(teacher, other_teacher_inputs, root=tmp_path).directory != first.directory


def test_a_feature_mapping_across_tokenizers_is_refused_on_the_probe_batch(paired, tokenizers):
    teacher = tiny_bert(vocab=len(tokenizers[0]), seed=0)
    student = tiny_bert(vocab=len(tokenizers[1]), layers=1, seed=1)
    plan = {"progress": False, "flash_distillation": {
        "block_names": ["bert.encoder.layer.0"], "train_steps": [1],
        "layer_mappings_for_knowledge_transfer": [[["bert.encoder.layer.0.output", "bert.encoder.layer.1.output"]]]}}
    loader = make_loader(paired, batch_size=8, shuffle=False)
    with pytest.raises(MappingError, match=r"mapping '.*': student\.tokenizer gives the student other tokens "
                                           r"than the teacher's.*remove the feature mappings"):
        Distiller(teacher, student, plan).fit(loader)
    # logit KD and the task loss (sequence-level outputs) train across the vocabularies
    kd = {"progress": False, "regular_distillation": {"train_steps": 2}}
    result = Distiller(teacher, student, kd).fit(loader)
    assert len(result.losses) == 2 and all(torch.isfinite(torch.tensor(result.losses)))


def test_the_trainer_passes_the_student_its_own_columns(paired, tokenizers, tmp_path):
    from transformers import TrainingArguments

    from autodistill.distill.trainer import DistillationTrainer

    teacher = tiny_bert(vocab=len(tokenizers[0]), seed=0)
    student = tiny_bert(vocab=len(tokenizers[1]), layers=1, seed=1)
    seen = []
    student.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs["input_ids"]), with_kwargs=True)
    trainer = DistillationTrainer(model=student, train_dataset=paired, args=TrainingArguments(
        str(tmp_path), max_steps=2, per_device_train_batch_size=8, report_to=[], use_cpu=True, save_strategy="no"))
    trainer.distill({"progress": False, "regular_distillation": {}}, teacher_model=teacher)
    student_rows = {tuple(row.tolist()) for row in paired.student.tensors["input_ids"]}
    assert seen and all(tuple(row.tolist()) in student_rows for ids in seen for row in ids)


def test_students_are_built_for_their_own_vocabulary(tokenizers):
    teacher_tok, student_tok = tokenizers
    teacher = tiny_bert(vocab=len(teacher_tok), seed=0)
    config = with_vocabulary(teacher.config, student_tok)
    assert config.vocab_size == len(student_tok) != teacher.config.vocab_size
    assert config.pad_token_id == student_tok.pad_token_id and teacher.config.vocab_size == len(teacher_tok)
    student = tiny_bert(vocab=len(student_tok), hidden=16, heads=2, layers=1, seed=3)
    words = student.bert.embeddings.word_embeddings.weight.detach().clone()
    report = init_from_teacher(student, teacher, shared_vocabulary=False)
    assert "bert.embeddings.word_embeddings.weight" in report.skipped
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, words)  # fresh, as built
    assert torch.equal(student.bert.embeddings.position_embeddings.weight,
                       teacher.bert.embeddings.position_embeddings.weight[:, :16])


def _vocabulary(folder: Path) -> dict[str, int]:
    return BertTokenizerFast.from_pretrained(str(folder)).get_vocab()


def _distill_config(workspace: Path, tmp_path: Path, tokenizer: Path, extra: str = "") -> Path:
    text = DISTILL_YAML.replace(REGULAR_ONLY, "").replace("student:\n", f"student:\n  tokenizer: {tokenizer}\n")
    text = text.replace("{root}", str(workspace)).replace("{out}", str(tmp_path / "run")) + extra
    path = tmp_path / "distill.yaml"
    path.write_text(text)
    return path


def test_distill_command_with_a_student_tokenizer(workspace, tmp_path, capsys):
    tokenizer = student_tokenizer_folder(tmp_path)
    assert main(["distill", str(_distill_config(workspace, tmp_path, tokenizer)), "--quiet"]) == 0, \
        capsys.readouterr().err
    out = tmp_path / "run-distilled"
    saved = json.loads((out / "config.json").read_text())
    assert saved["vocab_size"] == len(STUDENT_PIECES) + 5
    assert _vocabulary(out) == _vocabulary(tokenizer)  # the student's own tokenizer
    summary = json.loads((out / "distillation.json").read_text())
    assert summary["accuracy"] is not None and summary["teacher_accuracy"] is not None
    assert summary["stages"][0]["steps"] == 1


def test_search_command_with_a_student_tokenizer(workspace, tmp_path, capsys):
    tokenizer = student_tokenizer_folder(tmp_path)
    text = SEARCH_YAML.replace(SEARCH_FLASH, "").replace(
        "data:\n", f"student:\n  tokenizer: {tokenizer}\n  init_from_teacher: true\ndata:\n", 1)
    out = tmp_path / "run"
    config = tmp_path / "search.yaml"
    config.write_text(text.replace("{root}", str(workspace)).replace("{out}", str(out)))
    assert main(["search", str(config), "--quiet"]) == 0, capsys.readouterr().err
    students = sorted((out / "trials" / "tiny").iterdir())
    assert len(students) == 2
    for folder in students:
        assert json.loads((folder / "config.json").read_text())["vocab_size"] == len(STUDENT_PIECES) + 5
        assert _vocabulary(folder) == _vocabulary(tokenizer)
    assert list((out / "teacher_cache").iterdir())  # the teacher's outputs cached on its own tokens


def test_the_api_searches_with_a_student_tokenizer_from_a_config_dict(workspace, tmp_path):
    """`AutoDistillation(DistillationTask(config), config_dict)`: the students read their own tokens,
    the teacher's figures its own; a flash mapping in the same dict is refused as it is loaded."""
    import yaml

    from autodistill.config.loader import load_config_file
    from autodistill.config.schema import SearchRunConfig
    from autodistill.errors import ConfigError
    from autodistill.study.search import AutoDistillation
    from autodistill.study.task import DistillationTask

    tokenizer, out = student_tokenizer_folder(tmp_path), tmp_path / "api"
    text = SEARCH_YAML.replace("{root}", str(workspace)).replace("{out}", str(out))
    raw = yaml.safe_load(text.replace(SEARCH_FLASH, "").replace("max_trials: 2", "max_trials: 1"))
    raw["student"] = {"tokenizer": str(tokenizer)}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(raw))
    task = DistillationTask(load_config_file(SearchRunConfig, tmp_path / "search.yaml"), output_dir=out, quiet=True)
    assert task.teacher_loaders[0]["validation"] is not task.validation_loader
    assert next(iter(task.validation_loader))["input_ids"].max() < len(task.student_tokenizer)
    AutoDistillation(task, raw, output_dir=out, progress=False).search_loop()
    (student,) = (out / "trials" / "tiny").iterdir()
    assert _vocabulary(student) == _vocabulary(tokenizer)
    with pytest.raises(ConfigError, match=r"flash_distillation: stage .*student\.tokenizer gives the student"):
        AutoDistillation(task, yaml.safe_load(text) | {"student": {"tokenizer": str(tokenizer)}}, output_dir=out)


STUDENT_TOKENIZER = ("data:\n", "student: {tokenizer: {tok}}\ndata:\n")
CASES = [
    Case("student-tokenizer-with-flash-mapping-distill", r"config\.yaml:\d+:\d+: distillation: flash_distillation: "
         r"stage 'flash\[0\]:bert\.encoder\.layer\.0', mapping '.*': student\.tokenizer gives the student other "
         r"tokens than the teacher's, so 'bert\.encoder\.layer\.0\.output' and 'bert\.encoder\.layer\.1\.output' "
         r"have no token positions in common; remove the feature mappings", command="distill",
         replace=(("student:\n", "student:\n  tokenizer: {tok}\n"),)),
    Case("student-tokenizer-with-flash-mapping-search", r"config\.yaml:\d+:\d+: auto_distillation: "
         r"flash_distillation: stage 'flash\[0\].*student\.tokenizer gives the student other tokens",
         replace=(STUDENT_TOKENIZER,)),
    Case("student-tokenizer-with-masked-lm", r"student\.tokenizer: task masked_lm scores every token",
         replace=(STUDENT_TOKENIZER, ("  model: {root}/teacher\n", "  model: {root}/teacher\n"
                                      "  model_cls: AutoModelForMaskedLM\n"), (SEARCH_FLASH, ""))),
    Case("student-tokenizer-with-token-classification", r"student\.tokenizer: task token_classification scores "
         r"every token", replace=(STUDENT_TOKENIZER, ("  model: {root}/teacher\n", "  model: {root}/teacher\n"
                                                      "  model_cls: AutoModelForTokenClassification\n"))),
    Case("student-tokenizer-cannot-load-distill", r"student\.tokenizer: no tokenizer can be loaded from "
         r"'.*/run'.*; save the tokenizer into the folder \(tokenizer\.save_pretrained\) or remove "
         r"student\.tokenizer", command="distill",
         replace=(("student:\n", "student:\n  tokenizer: {tmp}/run\n"), (REGULAR_ONLY, ""))),
    Case("student-tokenizer-cannot-load-search", r"student\.tokenizer: no tokenizer can be loaded from '.*/run'",
         replace=(("data:\n", "student: {tokenizer: {tmp}/run}\ndata:\n"), (SEARCH_FLASH, ""))),
    Case("student-tokenizer-missing-folder", r"student\.tokenizer: folder '.*/no_such_tokenizer' does not exist",
         command="distill", replace=(("student:\n", "student:\n  tokenizer: {tmp}/no_such_tokenizer\n"),
                                     (REGULAR_ONLY, ""))),
    Case("student-tokenizer-with-static-int8", r"evaluation\.deployment\.quantization: static_int8 calibrates "
         r"the teacher and every student on the same training batches.*use dynamic_int8 or none",
         replace=(STUDENT_TOKENIZER, (SEARCH_FLASH, ""), ("  evaluation:\n", "  evaluation:\n    deployment: "
                                                         "{runtime: onnxruntime, quantization: static_int8}\n"))),
    Case("student-tokenizer-with-supernet", r"student\.tokenizer: search\.strategy supernet slices every student "
         r"out of the teacher", replace=(STUDENT_TOKENIZER, (SEARCH_FLASH, "")), args=("--strategy", "supernet")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_student_tokenizer(case, workspace, tmp_path, capsys, no_training):  # noqa: F811
    """The bad-input harness's contract: one stderr line naming the key and the fix, exit 2, no
    traceback, no file changed or added, nothing trained."""
    tok_root = tmp_path / "tokenizers"
    tok_root.mkdir()
    tok_folder = student_tokenizer_folder(tok_root)
    out = _existing_run(tmp_path, other_objectives=False)
    case = Case(case.id, case.expect, command=case.command, args=case.args,
                replace=tuple((old, new.replace("{tok}", str(tok_folder))) for old, new in case.replace))
    assert_refused(case, tmp_path, workspace, capsys, no_training, out)
