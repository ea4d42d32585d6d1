"""One canonical class name: every shipped list and description file resolves through it."""

import csv
import json

import pytest

from zsar.data.classnames import UnknownClass, class_key, display_name, overlap, vocab
from zsar.data.descriptions import describe, load_descriptions
from zsar.errors import ConfigError
from zsar.models.text import LabelSet, class_prompts
from zsar.resources import resource

LABELS = resource("labels")
VIDEO = resource("protocols", "video")
DESCRIPTIONS = resource("descriptions")

# Every shipped file that names classes, with the dataset whose classes it names.
CSV_LISTS = {
    "hmdb_51_labels.csv": "hmdb51", "hmdb_51_base_labels.csv": "hmdb51", "hmdb_51_novel_labels.csv": "hmdb51",
    "ucf_101_labels.csv": "ucf101", "ucf_101_base_labels.csv": "ucf101", "ucf_101_novel_labels.csv": "ucf101",
    "kinetics_400_labels.csv": "kinetics400", "kinetics_400_base_labels.csv": "kinetics400",
    "kinetics_400_novel_labels.csv": "kinetics400", "kinetics_600_labels.csv": "kinetics600",
    "ZS_split1_K600.csv": "kinetics600", "ZS_split2_K600.csv": "kinetics600", "ZS_split3_K600.csv": "kinetics600",
    "ssv2_labels.csv": "ssv2", "ssv2_174_base_labels.csv": "ssv2", "ssv2_174_novel_labels.csv": "ssv2",
}
CEZSAR = {
    "ucf101_dataset.json": "ucf101", "ucf101_truezsl_splits.json": "ucf101", "ucf101_truezsl2.0_splits.json": "ucf101",
    "ucf101_hard_cases_splits.json": "ucf101", "ucf101_semantic_gap_cases_splits.json": "ucf101",
    "kinetics400_splits.json": "kinetics400",
}
DESCRIPTION_FOLDERS = {"ucf_101_texts_gemini": "ucf101", "kinetics_400_texts_gemini": "kinetics400"}
POSITIONAL_DESCRIPTIONS = {"ntu60.txt": "ntu60", "ntu120.txt": "ntu120", "pku.txt": "pkummd"}


def _names_in(path):
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            return [r["name"] for r in csv.DictReader(f)]
    data = json.loads(path.read_text())
    if "training" in data:
        return data["training"] + data["testing"]
    return list(data)


def test_every_spelling_of_a_class_has_one_key():
    spellings = ["ApplyEyeMakeup", "apply_eye_makeup", "Apply Eye Makeup", "apply eye makeup", "APPLY-EYE-MAKEUP"]
    assert {class_key(s) for s in spellings} == {"applyeyemakeup"}
    assert class_key("brush_hair") == class_key("brush hair")
    assert class_key("Putting [something] on a surface") == class_key("Putting something on a surface")
    assert class_key("HandStandPushups") == class_key("HandstandPushups")
    assert class_key("kick") != class_key("kick ball")
    with pytest.raises(ValueError):
        class_key("  _ ")


def test_display_names():
    assert display_name("ApplyEyeMakeup") == "apply eye makeup"
    assert display_name("YoYo") == "yo yo"
    assert display_name("Archery") == "archery"
    assert display_name("brush_hair") == "brush hair"
    assert display_name("Putting [something] on a surface") == "Putting something on a surface"
    assert display_name("passing American football (in game)") == "passing American football (in game)"
    assert display_name("drink water.") == "drink water"


def test_vocab_resolves_any_spelling_and_names_the_nearest_class():
    ucf = vocab("ucf101")
    assert len(ucf) == 101 and ucf.resolve("Apply_Eye_Makeup") == "apply eye makeup"
    assert ucf.get("HandStandPushups") == "handstand pushups"
    assert "brush hair" not in ucf
    with pytest.raises(UnknownClass, match="nearest: apply eye makeup"):
        ucf.resolve("apply eye make up now")


def test_every_shipped_class_list_resolves():
    shipped = sorted(p.name for p in LABELS.glob("*.txt"))
    assert shipped == ["hmdb51.txt", "kinetics400.txt", "kinetics600.txt", "ntu120.txt", "ntu60.txt", "pkummd.txt", "ssv2.txt", "ucf101.txt"]
    sizes = {"hmdb51": 51, "ucf101": 101, "kinetics400": 400, "kinetics600": 600, "ssv2": 174, "ntu60": 60, "ntu120": 120, "pkummd": 51}
    for dataset, size in sizes.items():
        v = vocab(dataset)  # keys are checked unique when built
        assert len(v) == len(set(v.keys)) == size
        assert all(class_key(n) == k for n, k in zip(v.names, v.keys))

    assert sorted(p.name for p in (VIDEO / "labels").glob("*")) == sorted(CSV_LISTS)
    assert sorted(p.name for p in (VIDEO / "cezsar").glob("*")) == sorted(CEZSAR)
    for name, dataset in {**CSV_LISTS, **CEZSAR}.items():
        path = VIDEO / ("labels" if name.endswith(".csv") else "cezsar") / name
        names = _names_in(path)
        assert names, name
        unresolved = [n for n in names if vocab(dataset).get(n) is None]
        assert not unresolved, f"{name}: {unresolved[:5]}"


def test_every_shipped_description_file_resolves():
    assert sorted(p.name for p in (DESCRIPTIONS / "video").iterdir()) == sorted(DESCRIPTION_FOLDERS)
    for folder, dataset in DESCRIPTION_FOLDERS.items():
        files = sorted((DESCRIPTIONS / "video" / folder).glob("*.txt"))
        resolved = {vocab(dataset).get(f.stem) for f in files}
        assert None not in resolved, folder
        assert resolved == set(vocab(dataset).names)  # one file a class, every class described
    # the skeleton descriptions are positional: one line a class, in label order
    assert sorted(p.name for p in (DESCRIPTIONS / "skeleton").iterdir()) == sorted(POSITIONAL_DESCRIPTIONS)
    for name, dataset in POSITIONAL_DESCRIPTIONS.items():
        lines = [line for line in (DESCRIPTIONS / "skeleton" / name).read_text().splitlines() if line.strip()]
        assert len(lines) == len(vocab(dataset)), name


def test_shipped_descriptions_attach_to_label_sets():
    desc = load_descriptions("ucf101-gemini")
    labels = LabelSet(("apply eye makeup", "yo yo", "not a ucf class"))
    described, missing = describe(labels, desc)
    assert missing == ["not a ucf class"]
    assert "eye" in described.descriptions[0][0].lower()
    prompts = class_prompts(described, ["a video of {}."], use="descriptions")
    assert prompts[0] == list(described.descriptions[0])
    assert prompts[2] == ["a video of not a ucf class."]  # no description: the name stands in
    both = class_prompts(described, ["a video of {}."], use="both")
    assert both[1][0] == "a video of yo yo." and len(both[1]) == 2


def test_description_sources_json_folder_and_errors(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps({"Brush_Hair": "Combing hair.", "kick ball": ["Kicking.", "A ball."]}))
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "BrushHair.txt").write_text("Brushing one's hair.\n\nWith a brush.\n")
    desc = load_descriptions(f"{tmp_path / 'd.json'},{folder}")
    assert desc[class_key("brush hair")] == ("Combing hair.", "Brushing one's hair.", "With a brush.")
    assert desc[class_key("kick_ball")] == ("Kicking.", "A ball.")
    with pytest.raises(ConfigError, match="shipped set"):
        load_descriptions(tmp_path / "nope")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="map class names"):
        load_descriptions(tmp_path / "bad.json")


def test_overlap_by_key():
    assert overlap(["PlayingGuitar", "archery"], ["playing guitar", "Archery", "YoYo"]) == ["playing guitar", "Archery"]
