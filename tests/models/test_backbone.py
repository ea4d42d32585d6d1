import time

import pytest
import torch

from zsar.config import BackboneConfig
from zsar.errors import ZsarError
from zsar.models.backbone import create_backbone, save_weights


def test_local_checkpoint_reloads_with_identical_outputs(tmp_path):
    first = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, seed=3))
    path = save_weights(first, tmp_path / "tiny.pt")
    again = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, checkpoint=str(path)))
    other = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, seed=4))
    images = torch.randn(2, 3, 32, 32)
    tokens = first.tokenizer(["a shape moving left", "a shape growing"])
    with torch.no_grad():
        assert torch.equal(first.model.encode_image(images), again.model.encode_image(images))
        assert torch.equal(first.model.encode_text(tokens), again.model.encode_text(tokens))
        assert not torch.equal(first.model.encode_image(images), other.model.encode_image(images))
    assert again.fingerprint == first.fingerprint != other.fingerprint
    assert again.source == str(path)


def test_a_path_given_as_pretrained_is_loaded_too(tmp_path):
    first = create_backbone(BackboneConfig(name="zsar-tiny", pretrained=None, seed=5))
    path = save_weights(first, tmp_path / "w.pt")
    assert create_backbone(BackboneConfig(name="zsar-tiny", pretrained=str(path))).fingerprint == first.fingerprint


def test_unreachable_pretrained_weights_fail_fast_with_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.time()
    with pytest.raises(ZsarError) as e:
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained="openai"))
    assert time.time() - t0 < 10
    assert "backbone.checkpoint=PATH" in str(e.value)


def test_unreachable_without_offline_flag_still_fails_fast(monkeypatch):
    """Without network the probe answers within its timeout instead of the hub's retries."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    t0 = time.time()
    with pytest.raises(ZsarError, match="cannot be downloaded"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained="openai"))
    assert time.time() - t0 < 10


def test_bad_names_and_files_are_user_errors(tmp_path):
    with pytest.raises(ZsarError, match="unknown backbone"):
        create_backbone(BackboneConfig(name="ViT-Q-99", pretrained=None))
    with pytest.raises(ZsarError, match="no pretrained tag"):
        create_backbone(BackboneConfig(name="ViT-B-16", pretrained="nonexistent_tag"))
    with pytest.raises(ZsarError, match="not found"):
        create_backbone(BackboneConfig(name="zsar-tiny", checkpoint=str(tmp_path / "missing.pt")))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ZsarError, match="could not load"):
        create_backbone(BackboneConfig(name="zsar-tiny", checkpoint=str(junk)))
