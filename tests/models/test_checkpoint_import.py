"""Foreign checkpoints load through `backbone.checkpoint` into the same open_clip model.

One random-weight ViT-B-16 (QuickGELU, as OpenAI's CLIP and every code base built on it) is saved in
each layout the field publishes, with the key names of those code bases: open_clip's state dict,
OpenAI's TorchScript archive (scripted, with its metadata entries), ViFi-CLIP's `{'model': ...}`
(DDP `module.` prefix, no token embedding, class-specific prompt buffers, a pickled config object)
and PySlowFast's `{'model_state': ...}` (FROSTER/SC-CLIP: `model.` + CLIP keys, the raw teacher
copy, projectors, an adapter inside the image tower). Each loads back with the original's weights
fingerprint and identical image and text embeddings. The model is built once per module: a
ViT-B-16 takes seconds and ~600 MB.
"""

import copy
import os

import pytest
import torch
import torch.nn as nn

from zsar.cli import main
from zsar.config import BackboneConfig, ExperimentConfig
from zsar.errors import ZsarError
from zsar.models.backbone import create_backbone, weights_fingerprint

BASE = dict(name="ViT-B-16", pretrained=None, seed=7)


@pytest.fixture(scope="module")
def original():
    return create_backbone(BackboneConfig(**BASE, activation="quick_gelu"))


@pytest.fixture(scope="module")
def inputs(original):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(1, 3, 224, 224, generator=gen), original.tokenizer(["a person dancing", "a dog catching a ball"])


@pytest.fixture(scope="module")
def expected(original, inputs):
    return embeddings(original.model, inputs)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return tmp_path_factory.mktemp("foreign")


def embeddings(model, inputs):
    images, tokens = inputs
    with torch.no_grad():
        return model.encode_image(images), model.encode_text(tokens)


def assert_same_model(loaded, original, expected, inputs):
    assert loaded.fingerprint == original.fingerprint
    image, text = embeddings(loaded.model, inputs)
    assert torch.equal(image, expected[0]) and torch.equal(text, expected[1])
    assert loaded.activation == "quick_gelu" and loaded.name == "ViT-B-16-quickgelu"


class CfgNode(dict):
    """Stands in for the yacs config ViFi-CLIP pickles into its checkpoints."""


class RunsCode:
    """A pickled object whose unpickling would create a folder: must never run on load."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.makedirs, (self.target,)


def save_open_clip(original, path):
    torch.save({"state_dict": {f"module.{k}": v for k, v in original.model.state_dict().items()}, "epoch": 3}, path)


def save_torchscript(original, path):
    model = copy.deepcopy(original.model)
    del model.context_length, model.vocab_size  # plain ints in open_clip; tensors in OpenAI's archive
    for key, value in (("input_resolution", 224), ("context_length", 77), ("vocab_size", 49408)):
        model.register_buffer(key, torch.tensor(value))
    torch.jit.save(torch.jit.script(model), str(path))


def save_vificlip(original, path, pwned):
    model = {}
    for key, value in original.model.state_dict().items():
        if key.startswith("visual."):
            model["module.image_encoder." + key[len("visual."):]] = value
        elif key == "logit_scale":
            model["module.logit_scale"] = value
        elif key != "token_embedding.weight":  # ViFi-CLIP's text encoder does not keep it
            model["module.text_encoder." + key] = value
    model["module.prompt_learner.complete_text_embeddings"] = torch.randn(5, 77, 512)
    config = CfgNode(TRAINER=CfgNode(ViFi_CLIP=CfgNode(ZS_EVAL=False)), hook=RunsCode(str(pwned)))
    torch.save({"model": model, "optimizer": {"state": {}, "param_groups": []}, "epoch": 10,
                "max_accuracy": 53.3, "config": config}, path)


def save_pyslowfast(original, path):
    state = {f"model.{k}": v for k, v in original.model.state_dict().items()}
    state.update({"raw_model.visual.proj": torch.randn(768, 512), "raw_model.logit_scale": torch.tensor(4.6)})
    state.update({"projector_v.0.weight": torch.randn(512, 512), "projector_v.2.weight": torch.zeros(512, 512),
                  "projector_t.0.weight": torch.randn(512, 512), "projector_t.2.weight": torch.zeros(512, 512),
                  "model.visual.transformer.resblocks.11.adapter.ln1.weight": torch.ones(768)})
    torch.save({"epoch": 12, "model_state": state, "optimizer_state": {}, "cfg": "MODEL:\n  ARCH: vitb16\n"}, path)


def test_open_clip_state_dict_under_ddp_prefix(original, expected, inputs, files):
    path = files / "open_clip.pt"
    save_open_clip(original, path)
    loaded = create_backbone(BackboneConfig(name="ViT-B-16-quickgelu", pretrained=None, checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)


def test_openai_torchscript(original, expected, inputs, files, capsys):
    path = files / "ViT-B-16.pt"
    save_torchscript(original, path)
    loaded = create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)  # QuickGELU from the layout, not the name
    assert "ViT-B-16-quickgelu: quick_gelu activation" in capsys.readouterr().err


def test_vificlip_takes_token_embedding_from_the_base_and_runs_no_pickled_code(original, expected, inputs, files, tmp_path):
    base, path, pwned = files / "base.pt", files / "vificlip.pth", tmp_path / "pwned"
    torch.save(original.model.state_dict(), base)
    save_vificlip(original, path, pwned)
    loaded = create_backbone(BackboneConfig(name="ViT-B-16", pretrained=str(base), checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)
    assert not pwned.exists()
    with pytest.raises(ZsarError, match="token_embedding.weight.*set backbone.pretrained"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, checkpoint=str(path)))


def test_pyslowfast_extras_load_into_a_method_that_has_them(original, expected, inputs, files, zsar_home, capsys):
    from zsar.methods.frozen_clip import FrozenCLIP
    from zsar.models.method import NoConfig

    path = files / "froster.pyth"
    save_pyslowfast(original, path)
    loaded = create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)
    assert set(loaded.extras) == {"projector_v.0.weight", "projector_v.2.weight", "projector_t.0.weight",
                                  "projector_t.2.weight", "clip.visual.transformer.resblocks.11.adapter.ln1.weight"}

    class WithProjector(FrozenCLIP):
        def __init__(self, cfg, backbone, exp):
            super().__init__(cfg, backbone, exp)
            self.projector_v = nn.Sequential(nn.Linear(512, 512, bias=False), nn.GELU(), nn.Linear(512, 512, bias=False))

    capsys.readouterr()
    method = WithProjector(NoConfig(), loaded, ExperimentConfig())
    assert torch.equal(method.projector_v[0].weight, loaded.extras["projector_v.0.weight"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["[zsar] frozen_clip: 2 of 5 checkpoint weight(s) outside the CLIP model loaded into the method; "
                   "not used: clip.visual.transformer.resblocks.*.adapter.ln1 (1), projector_t.* (2)"]


def test_zsar_checkpoint_completes_its_trained_tower_from_its_own_backbone(original, inputs, files, zsar_home):
    from zsar.methods.vificlip import ViFiCLIP, ViFiCLIPConfig
    from zsar.train import checkpoint as ckpt

    exp = ExperimentConfig(backbone=BackboneConfig(**BASE, activation="quick_gelu"))
    backbone = copy.copy(original)
    backbone.model = copy.deepcopy(original.model)
    method = ViFiCLIP(ViFiCLIPConfig(train_text=False), backbone, exp)
    with torch.no_grad():
        method.clip.visual.proj.add_(0.5)  # "trained": differs from the base backbone
    ckpt.save(files / "zsar_ckpt", method, None, None, 1, exp, {}, original.fingerprint)
    method.clip.requires_grad_(True)  # as a built backbone: which flags are set picks torch's attention path
    loaded = create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, checkpoint=str(files / "zsar_ckpt")))
    assert loaded.fingerprint == weights_fingerprint(method.clip) != original.fingerprint
    image, text = embeddings(loaded.model, inputs)
    want = embeddings(method.clip, inputs)
    assert torch.equal(image, want[0]) and torch.equal(text, want[1])


def test_forced_format_and_architecture_mismatches_are_one_line(original, files):
    path = files / "open_clip_plain.pt"
    torch.save(original.model.state_dict(), path)
    with pytest.raises(ZsarError, match="not a vificlip checkpoint: it has no 'model' entry"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, checkpoint=str(path), checkpoint_format="vificlip"))
    with pytest.raises(ZsarError, match=r"does not fit ViT-B-32: shapes differ: .*it fits ViT-B-16"):
        create_backbone(BackboneConfig(name="ViT-B-32", pretrained=None, checkpoint=str(path)))
    partial = {k: v for k, v in original.model.state_dict().items() if not k.startswith("visual.ln_post")}
    torch.save(partial, files / "partial.pt")
    with pytest.raises(ZsarError, match=r"does not fit ViT-B-16: missing visual.ln_post.weight, visual.ln_post.bias"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, checkpoint=str(files / "partial.pt")))


@pytest.mark.parametrize("content", ["truncated", "unrelated", "text"])
def test_broken_or_unrelated_files_give_one_line_and_exit_2(original, files, tmp_path, capsys, content):
    path = tmp_path / "weights.pt"
    if content == "truncated":
        torch.save(original.model.state_dict(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "unrelated":
        torch.save({"encoder.layer1.weight": torch.ones(3), "head.bias": torch.zeros(2)}, path)
    else:
        path.write_text("not weights\n")
    assert main(["weights", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("zsar: error:") and str(path) in err
    assert ("unknown checkpoint layout" in err) == (content == "unrelated")


def test_inspect_names_format_fitting_model_and_dropped_keys(original, files, tmp_path, capsys):
    path = files / "vificlip_inspect.pth"
    save_vificlip(original, path, tmp_path / "pwned")
    assert main(["weights", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format: vificlip" in out and "fits: ViT-B-16-quickgelu" in out
    assert "from backbone.pretrained: token_embedding.weight" in out
    assert "drops: prompt_learner.complete_text_embeddings" in out
    assert not (tmp_path / "pwned").exists()


@pytest.fixture(scope="module")
def warm_hf_cache(original, tmp_path_factory):
    """A Hugging Face cache holding the `openai` tag's file of ViT-B-16 (here: the random weights),
    laid out as `huggingface_hub` writes it; nothing is downloaded."""
    from safetensors.torch import save_file

    cache = tmp_path_factory.mktemp("hf_hub")
    repo = cache / "models--timm--vit_base_patch16_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in original.model.state_dict().items()},
              str(repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors"))
    return cache


@pytest.fixture
def offline_with(monkeypatch):
    import huggingface_hub.constants as constants

    def use(cache):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return use


def test_a_quick_gelu_tag_builds_quickgelu_for_the_plain_name_from_the_local_cache(original, expected, inputs, warm_hf_cache, offline_with):
    from open_clip.transformer import QuickGELU

    import open_clip

    assert open_clip.get_pretrained_cfg("ViT-B-16", "openai")["quick_gelu"]  # what open_clip says about the tag
    assert not open_clip.get_model_config("ViT-B-16").get("quick_gelu")  # ... and about the name
    offline_with(warm_hf_cache)
    loaded = create_backbone(BackboneConfig(name="ViT-B-16", pretrained="openai"))
    activations = {type(block.mlp.gelu) for tower in (loaded.model.visual.transformer, loaded.model.transformer)
                   for block in tower.resblocks}
    assert activations == {QuickGELU}
    assert loaded.source == "openai"
    assert_same_model(loaded, original, expected, inputs)
    with pytest.raises(ZsarError, match="backbone.activation=gelu builds gelu, but the openai weights were trained with quick_gelu"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained="openai", activation="gelu"))


def test_weights_fetch_uses_the_cache_and_says_how_to_fetch_offline(warm_hf_cache, offline_with, tmp_path, capsys):
    offline_with(warm_hf_cache)
    assert main(["weights", "fetch", "openai", "--model", "ViT-B-16"]) == 0
    assert capsys.readouterr().out.strip().startswith(str(warm_hf_cache))
    offline_with(tmp_path)  # an empty cache
    assert main(["weights", "fetch", "openai"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot download ViT-B-16/openai from this machine: offline mode is set" in err
    assert "zsar weights fetch openai --model ViT-B-16` on a machine with internet" in err
