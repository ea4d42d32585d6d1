"""Video and class text embeddings of one run, for the t-SNE plot (SC-CLIP's Fig. 7).

The run's `checkpoint` artifact carries its resolved config and trained state: the method is
rebuilt from them, a few videos of one evaluation part (spread evenly over its classes) are decoded
in this process with the evaluation clip spec, and each is embedded with the method's
`encode_video` (views averaged, then normalised); the classes with `class_embeddings`. This stays
small on purpose (`max_videos`); it needs the run's dataset root to be readable here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from zsar.errors import ZsarError
from zsar.log import log


@dataclass
class Embeddings:
    part: str
    videos: np.ndarray  # [N, D]
    labels: np.ndarray  # [N]
    classes: np.ndarray  # [C, D]
    class_names: list[str]


def pick_rows(labels: np.ndarray, max_videos: int) -> np.ndarray:
    """Row indices, at most `max_videos`, taking the same number from every class (in order)."""
    classes = np.unique(labels)
    per_class = max(max_videos // max(len(classes), 1), 1)
    picked = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in classes]) if len(classes) else np.zeros(0, int)
    return np.sort(picked)[:max_videos]


def checkpoint_embeddings(checkpoint_dir: str, part_name: str | None = None, max_videos: int = 64) -> Embeddings:
    from zsar.config import resolve
    from zsar.data.pipeline import clip_spec
    from zsar.data.video import load_clip
    from zsar.models.backbone import create_backbone
    from zsar.registry import METHODS
    from zsar.train import checkpoint as ckpt
    from zsar.train.inputs import backbone_size
    from zsar.train.plan import build_plan
    from zsar.train.runner import checkpoint_config

    checkpoint_config(checkpoint_dir)  # a clear error when it is not a checkpoint
    cfg = resolve(file=f"{checkpoint_dir}/{ckpt.CONFIG}")
    try:
        plan = build_plan(cfg, cfg.split)
    except ZsarError as e:
        raise ZsarError(f"the run's data is not readable here ({e})") from None
    parts = {p.name: p for p in plan.evals}
    if part_name is None:  # the unseen classes are the point of the plot
        part_name = "novel" if "novel" in parts else plan.evals[-1].name
    if part_name not in parts:
        raise ZsarError(f"the run has no evaluation part '{part_name}' (it has: {', '.join(parts)})")
    part = parts[part_name]

    backbone = create_backbone(cfg.backbone, device="cpu")
    method = METHODS.get(cfg.method)(cfg.method_config(), backbone, cfg)
    method.load_checkpoint_state(ckpt.load_state(checkpoint_dir)["model"])
    method.eval()
    spec = clip_spec(cfg.data, cfg.data.size or backbone_size(cfg), train=False)
    all_labels = np.asarray(part.manifest.column("label").to_pylist())
    rows = pick_rows(all_labels, max_videos)
    paths = part.manifest.column("path").to_pylist()
    videos, labels = [], []
    with torch.no_grad():
        for i in rows:
            try:
                clip, _ = load_clip(paths[i], spec)
            except Exception as e:  # noqa: BLE001 - an unreadable file is left out of the plot, and named
                log(f"warning: {paths[i]} left out of the embedding plot: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                continue
            inputs = method.to_input(clip[None], method.device)  # 1, V, ...
            emb = method.encode_video({method.input_key: inputs.flatten(0, 1)}).float().mean(0)
            videos.append(torch.nn.functional.normalize(emb, dim=-1).numpy())
            labels.append(all_labels[i])
        classes = method.class_embeddings(part.labels).float().cpu().numpy()
    if not videos:
        raise ZsarError(f"no video of part '{part_name}' could be decoded")
    return Embeddings(part_name, np.stack(videos), np.asarray(labels), classes, list(part.labels.names))


def tsne_2d(emb: Embeddings, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the videos and the class embeddings together (cosine distance)."""
    from sklearn.manifold import TSNE

    points = np.concatenate([emb.videos, emb.classes]).astype(np.float64)
    perplexity = float(min(30.0, max(2.0, (len(points) - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, metric="cosine", init="random", random_state=seed).fit_transform(points)
