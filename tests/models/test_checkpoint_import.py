"""Foreign checkpoints load through `backbone.checkpoint` into the same open_clip model.

One random-weight CLIP (QuickGELU, as OpenAI's CLIP and every code base built on it) is saved in
each layout the field publishes, with the key names of those code bases: open_clip's state dict,
OpenAI's TorchScript archive (scripted, with its metadata entries), ViFi-CLIP's `{'model': ...}`
(DDP `module.` prefix, no token embedding, class-specific prompt buffers, a pickled config object)
and PySlowFast's `{'model_state': ...}` (FROSTER/SC-CLIP: `model.` + CLIP keys, the raw teacher
copy, projectors, an adapter inside the image tower). Each loads back with the original's weights
fingerprint and identical image and text embeddings.

The layouts only rename keys, so the model is zsar-tiny, with a `zsar-tiny-quickgelu` twin
registered as open_clip registers `ViT-B-16-quickgelu`: a ViT-B-16 takes seconds and ~600 MB per
file. Where the full-size architecture is the point (which open_clip model a file fits), the files
hold ViT-B-16's keys and shapes (`shapes_only`); the `openai` tag test builds a real ViT-B-16.
"""

import copy
import dataclasses
import json
import os

import pytest
import torch
import torch.nn as nn

from zsar.cli import main
from zsar.config import BackboneConfig, ExperimentConfig
from zsar.errors import ZsarError
from zsar.models.backbone import add_model_configs, create_backbone, weights_fingerprint

BASE = dict(name="zsar-tiny", pretrained=None, seed=7)
QUICK = "zsar-tiny-quickgelu"


@pytest.fixture(scope="module", autouse=True)
def quickgelu_twin(tmp_path_factory):
    """`zsar-tiny-quickgelu` in open_clip's registry for this module only: zsar-tiny's config plus
    `quick_gelu`, as open_clip ships `<name>-quickgelu` for the full-size models."""
    import open_clip
    from open_clip import factory

    add_model_configs()
    path = tmp_path_factory.mktemp("model_configs") / f"{QUICK}.json"
    path.write_text(json.dumps({**open_clip.get_model_config("zsar-tiny"), "quick_gelu": True}))
    open_clip.add_model_config(path)
    yield
    factory._MODEL_CONFIG_PATHS.remove(path)
    factory._MODEL_CONFIGS.pop(QUICK)


def shapes_only(name):
    """The state dict of open_clip's `name` with every tensor a broadcast zero: a full-size
    checkpoint's keys and shapes in a file of a few kB, for checks that end before weights load."""
    import open_clip

    with torch.device("meta"):
        model = open_clip.create_model(name, pretrained=None, device="meta")
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def built(quickgelu_twin):
    return create_backbone(BackboneConfig(**BASE, activation="quick_gelu"))


@pytest.fixture(scope="module")
def original(built):
    """`built` with every weight moved off its init (LayerNorms start as ones and zeros), so that a
    weight loaded into another's place shows."""
    model = copy.deepcopy(built.model)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.02 * torch.randn(param.shape, generator=gen))
    return dataclasses.replace(built, model=model, fingerprint=weights_fingerprint(model))


def image_and_text(backbone):
    gen = torch.Generator().manual_seed(0)
    size = backbone.image_size
    return torch.randn(1, 3, size, size, generator=gen), backbone.tokenizer(["a person dancing", "a dog catching a ball"])


@pytest.fixture(scope="module")
def inputs(original):
    return image_and_text(original)


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


def assert_same_model(loaded, original, expected, inputs, name=QUICK):
    assert loaded.fingerprint == original.fingerprint
    image, text = embeddings(loaded.model, inputs)
    assert torch.equal(image, expected[0]) and torch.equal(text, expected[1])
    assert loaded.activation == "quick_gelu" and loaded.name == name


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
    for key, value in (("input_resolution", original.image_size), ("context_length", original.model.context_length), ("vocab_size", 49408)):
        model.register_buffer(key, torch.tensor(value))
    torch.jit.save(torch.jit.script(model), str(path))


def save_vificlip(state, path, pwned):
    model = {}
    for key, value in state.items():
        if key.startswith("visual."):
            model["module.image_encoder." + key[len("visual."):]] = value
        elif key == "logit_scale":
            model["module.logit_scale"] = value
        elif key != "token_embedding.weight":  # ViFi-CLIP's text encoder does not keep it
            model["module.text_encoder." + key] = value
    length, width = state["positional_embedding"].shape
    model["module.prompt_learner.complete_text_embeddings"] = torch.randn(5, length, width)
    config = CfgNode(TRAINER=CfgNode(ViFi_CLIP=CfgNode(ZS_EVAL=False)), hook=RunsCode(str(pwned)))
    torch.save({"model": model, "optimizer": {"state": {}, "param_groups": []}, "epoch": 10,
                "max_accuracy": 53.3, "config": config}, path)


def save_pyslowfast(original, path):
    state = {f"model.{k}": v for k, v in original.model.state_dict().items()}
    width, dim = original.model.visual.proj.shape
    state.update({"raw_model.visual.proj": torch.randn(width, dim), "raw_model.logit_scale": torch.tensor(4.6)})
    state.update({"projector_v.0.weight": torch.randn(dim, dim), "projector_v.2.weight": torch.zeros(dim, dim),
                  "projector_t.0.weight": torch.randn(dim, dim), "projector_t.2.weight": torch.zeros(dim, dim),
                  "model.visual.transformer.resblocks.1.adapter.ln1.weight": torch.ones(width)})
    torch.save({"epoch": 12, "model_state": state, "optimizer_state": {}, "cfg": "MODEL:\n  ARCH: vitb16\n"}, path)


def test_open_clip_state_dict_under_ddp_prefix(original, expected, inputs, files):
    path = files / "open_clip.pt"
    save_open_clip(original, path)
    loaded = create_backbone(BackboneConfig(name=QUICK, pretrained=None, checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)


def test_openai_torchscript(original, expected, inputs, files, capsys):
    path = files / "zsar-tiny.pt"
    save_torchscript(original, path)
    loaded = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)  # QuickGELU from the layout, not the name
    assert f"{QUICK}: quick_gelu activation" in capsys.readouterr().err


def test_vificlip_takes_token_embedding_from_the_base_and_runs_no_pickled_code(original, expected, inputs, files, tmp_path):
    base, path, pwned = files / "base.pt", files / "vificlip.pth", tmp_path / "pwned"
    torch.save(original.model.state_dict(), base)
    save_vificlip(original.model.state_dict(), path, pwned)
    loaded = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=str(base), checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)
    assert not pwned.exists()
    with pytest.raises(ZsarError, match="token_embedding.weight.*set backbone.pretrained"):
        create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, checkpoint=str(path)))


def test_pyslowfast_extras_load_into_a_method_that_has_them(original, expected, inputs, files, zsar_home, capsys):
    from zsar.methods.frozen_clip import FrozenCLIP
    from zsar.models.method import NoConfig

    path = files / "froster.pyth"
    save_pyslowfast(original, path)
    loaded = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, checkpoint=str(path)))
    assert_same_model(loaded, original, expected, inputs)
    assert set(loaded.extras) == {"projector_v.0.weight", "projector_v.2.weight", "projector_t.0.weight",
                                  "projector_t.2.weight", "clip.visual.transformer.resblocks.1.adapter.ln1.weight"}

    class WithProjector(FrozenCLIP):
        def __init__(self, cfg, backbone, exp):
            super().__init__(cfg, backbone, exp)
            dim = backbone.embed_dim
            self.projector_v = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.GELU(), nn.Linear(dim, dim, bias=False))

    capsys.readouterr()
    method = WithProjector(NoConfig(), loaded, ExperimentConfig())
    assert torch.equal(method.projector_v[0].weight, loaded.extras["projector_v.0.weight"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["[zsar] frozen_clip: 2 of 5 checkpoint weight(s) outside the CLIP model loaded into the method; "
                   "not used: clip.visual.transformer.resblocks.*.adapter.ln1 (1), projector_t.* (2)"]


def test_zsar_checkpoint_completes_its_trained_tower_from_its_own_backbone(built, inputs, files, zsar_home):
    from zsar.methods.vificlip import ViFiCLIP, ViFiCLIPConfig
    from zsar.train import checkpoint as ckpt

    exp = ExperimentConfig(backbone=BackboneConfig(**BASE, activation="quick_gelu"))
    backbone = copy.copy(built)
    backbone.model = copy.deepcopy(built.model)
    method = ViFiCLIP(ViFiCLIPConfig(train_text=False), backbone, exp)
    with torch.no_grad():
        method.clip.visual.proj.add_(0.5)  # "trained": differs from the base backbone
    ckpt.save(files / "zsar_ckpt", method, None, None, 1, exp, {}, built.fingerprint)
    method.clip.requires_grad_(True)  # as a built backbone: which flags are set picks torch's attention path
    loaded = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, checkpoint=str(files / "zsar_ckpt")))
    assert loaded.fingerprint == weights_fingerprint(method.clip) != built.fingerprint
    image, text = embeddings(loaded.model, inputs)
    want = embeddings(method.clip, inputs)
    assert torch.equal(image, want[0]) and torch.equal(text, want[1])


def test_forced_format_and_architecture_mismatches_are_one_line(files):
    path, state = files / "open_clip_plain.pt", shapes_only("ViT-B-16")
    torch.save(state, path)
    with pytest.raises(ZsarError, match="not a vificlip checkpoint: it has no 'model' entry"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, checkpoint=str(path), checkpoint_format="vificlip"))
    with pytest.raises(ZsarError, match=r"does not fit ViT-B-32: shapes differ: .*it fits ViT-B-16"):
        create_backbone(BackboneConfig(name="ViT-B-32", pretrained=None, checkpoint=str(path)))
    partial = {k: v for k, v in state.items() if not k.startswith("visual.ln_post")}
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


def test_inspect_names_format_fitting_model_and_dropped_keys(files, tmp_path, capsys):
    path = files / "vificlip_inspect.pth"
    save_vificlip(shapes_only("ViT-B-16"), path, tmp_path / "pwned")
    assert main(["weights", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format: vificlip" in out and "fits: ViT-B-16-quickgelu" in out
    assert "from backbone.pretrained: token_embedding.weight" in out
    assert "drops: prompt_learner.complete_text_embeddings" in out
    assert not (tmp_path / "pwned").exists()


def hf_cache(folder, state):
    """A Hugging Face cache holding `state` as the `openai` tag's file of ViT-B-16, laid out as
    `huggingface_hub` writes it; nothing is downloaded."""
    from safetensors.torch import save_file

    repo = folder / "models--timm--vit_base_patch16_clip_224.openai"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(repo / "snapshots" / "0123abcd" / "open_clip_model.safetensors"))
    return folder


@pytest.fixture
def offline_with(monkeypatch):
    import huggingface_hub.constants as constants

    def use(cache):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return use


@pytest.mark.slow  # the openai tag exists only for full-size models: builds, saves (600 MB) and loads a ViT-B-16
def test_a_quick_gelu_tag_builds_quickgelu_for_the_plain_name_from_the_local_cache(offline_with, tmp_path):
    from open_clip.transformer import QuickGELU

    import open_clip

    assert open_clip.get_pretrained_cfg("ViT-B-16", "openai")["quick_gelu"]  # what open_clip says about the tag
    assert not open_clip.get_model_config("ViT-B-16").get("quick_gelu")  # ... and about the name
    big = create_backbone(BackboneConfig(name="ViT-B-16", pretrained=None, seed=7, activation="quick_gelu"))
    inputs = image_and_text(big)
    expected = embeddings(big.model, inputs)
    offline_with(hf_cache(tmp_path, big.model.state_dict()))
    loaded = create_backbone(BackboneConfig(name="ViT-B-16", pretrained="openai"))
    activations = {type(block.mlp.gelu) for tower in (loaded.model.visual.transformer, loaded.model.transformer)
                   for block in tower.resblocks}
    assert activations == {QuickGELU}
    assert loaded.source == "openai"
    assert_same_model(loaded, big, expected, inputs, name="ViT-B-16-quickgelu")
    with pytest.raises(ZsarError, match="backbone.activation=gelu builds gelu, but the openai weights were trained with quick_gelu"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained="openai", activation="gelu"))


def test_weights_fetch_uses_the_cache_and_says_how_to_fetch_offline(original, offline_with, tmp_path, capsys):
    cache = hf_cache(tmp_path / "hub", original.model.state_dict())  # fetch only finds the file
    offline_with(cache)
    assert main(["weights", "fetch", "openai", "--model", "ViT-B-16"]) == 0
    assert capsys.readouterr().out.strip().startswith(str(cache))
    offline_with(tmp_path / "empty")  # an empty cache
    assert main(["weights", "fetch", "openai"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot download ViT-B-16/openai from this machine: offline mode is set" in err
    assert "zsar weights fetch openai --model ViT-B-16` on a machine with internet" in err
