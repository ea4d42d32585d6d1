import pytest
import torch

from zsar.config import resolve
from zsar.errors import ConfigError
from zsar.models.backbone import create_backbone
from zsar.models.text import ClassEmbeddingCache, LabelSet, class_prompts, pool_prompts, resolve_templates
from zsar.registry import METHODS


def test_prompts_from_templates_and_descriptions():
    labels = LabelSet(("jump", "run"), (("a person jumps high",), ()))
    assert class_prompts(labels, ["a {}.", "{}!"], "names") == [["a jump.", "jump!"], ["a run.", "run!"]]
    # a class without descriptions falls back to its name
    assert class_prompts(labels, ["a {}."], "descriptions") == [["a person jumps high"], ["a run."]]
    assert class_prompts(labels, ["a {}."], "both") == [["a jump.", "a person jumps high"], ["a run."]]
    with pytest.raises(ConfigError):
        resolve_templates("no_such_set")
    with pytest.raises(ConfigError):
        resolve_templates(["no placeholder"])


def test_pool_prompts_is_the_normalised_mean():
    e = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    pooled = pool_prompts(e, [2, 3])
    expected = torch.nn.functional.normalize(torch.stack([e[:2].mean(0), e[2:].mean(0)]), dim=-1)
    assert torch.allclose(pooled, expected)


def test_second_evaluation_of_a_label_set_encodes_nothing(zsar_home):
    cfg = resolve(method="frozen_clip", dataset="demo")
    backbone = create_backbone(cfg.backbone)
    method = METHODS.get("frozen_clip")(cfg.method_config(), backbone, cfg)
    calls = []
    real = method._encode_sentences
    method._text_cache.encode = lambda s: calls.append(len(s)) or real(s)
    labels = LabelSet(("moving left quickly", "growing slowly"))
    first = method.class_embeddings(labels)
    second = method.class_embeddings(labels)
    assert len(calls) == 1 and torch.equal(first, second)
    method.class_embeddings(LabelSet(("shrinking slowly",)))
    assert len(calls) == 2  # a different label set is encoded


def test_disk_cache_is_reused_and_keyed_by_identity(tmp_path):
    calls = []

    def encode(sentences):
        calls.append(sentences)
        return torch.nn.functional.normalize(torch.randn(len(sentences), 3), dim=-1)

    prompts = [["a"], ["b", "c"]]
    a = ClassEmbeddingCache("enc@1", encode, tmp_path)(prompts)
    b = ClassEmbeddingCache("enc@1", encode, tmp_path)(prompts)  # a new process would do this
    assert torch.equal(a, b) and len(calls) == 1
    ClassEmbeddingCache("enc@2", encode, tmp_path)(prompts)  # other weights: recomputed
    assert len(calls) == 2
