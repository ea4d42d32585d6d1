"""The parts of `scople` (see methods/scople.py for the paper mapping): learnable context in a frozen
text encoder (CLIP's text tower or a sentence-transformers BERT), the dual-stream combination, the
joint-shaped prompt, the adaptive visual representation sampler and the multi-positive loss."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from zsar.errors import ConfigError


class PromptedCLIPText(nn.Module):
    """CoOp-style context in a frozen CLIP text tower: "<sot> ctx_1 .. ctx_n <name tokens> <eot>".

    The `n_ctx` context vectors (token-embedding width) replace nothing; they are inserted after
    the start token, the sequence keeps the tower's context length (trailing padding drops off)
    and the end token's output, now `n_ctx` places later, is the sentence embedding. The tower is
    held by reference, not as a submodule, so its frozen weights stay where the method keeps them."""

    def __init__(self, clip: nn.Module, tokenizer, n_ctx: int, init_std: float = 0.02):
        super().__init__()
        if not hasattr(clip, "token_embedding"):
            raise ConfigError("scople: the prompted stream needs a CLIP whose text tower has token embeddings (open_clip CLIP)")
        self._tower = (clip, tokenizer)
        self.n_ctx = n_ctx
        self.ctx = nn.Parameter(torch.randn(n_ctx, clip.token_embedding.embedding_dim) * init_std)

    def forward(self, sentences: list[str]) -> torch.Tensor:
        clip, tokenizer = self._tower
        tokens = tokenizer(sentences).to(self.ctx.device)
        n, length = tokens.shape
        eot = tokens.argmax(-1) + self.n_ctx
        if int(eot.max()) >= length:
            raise ConfigError(f"scople: a class text is too long for {self.n_ctx} context tokens in CLIP's "
                              f"{length}-token context; lower hparams.n_ctx")
        cast = clip.transformer.get_cast_dtype()
        x = clip.token_embedding(tokens).to(cast)
        ctx = self.ctx.to(cast).expand(n, -1, -1)
        x = torch.cat([x[:, :1], ctx, x[:, 1 : length - self.n_ctx]], 1)
        x = x + clip.positional_embedding.to(cast)
        x = clip.ln_final(clip.transformer(x, attn_mask=clip.attn_mask))
        x = x[torch.arange(n, device=x.device), eot]
        x = clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) else x @ clip.text_projection
        return nnf.normalize(x.float(), dim=-1)


class PromptedSentenceTransformer(nn.Module):
    """The same for a frozen sentence-transformers BERT (MiniLM): "[CLS] ctx_1 .. ctx_n <name> [SEP]"
    through the encoder with the context as input embeddings (BERT adds its own position and type
    embeddings), then the model's mean pooling over the attended positions and normalisation.
    With `n_ctx = 0` this is exactly the model's own `encode`."""

    def __init__(self, model, n_ctx: int, init_std: float = 0.02):
        super().__init__()
        self._model = (model,)
        bert = model[0].auto_model
        self.n_ctx = n_ctx
        self.ctx = nn.Parameter(torch.randn(n_ctx, bert.embeddings.word_embeddings.embedding_dim) * init_std)

    def forward(self, sentences: list[str]) -> torch.Tensor:
        (model,) = self._model
        bert, tokenizer = model[0].auto_model, model[0].tokenizer
        device = next(bert.parameters()).device
        tok = tokenizer(sentences, padding=True, truncation=True, max_length=model.max_seq_length - self.n_ctx,
                        return_tensors="pt").to(device)
        ids, mask = tok["input_ids"], tok["attention_mask"]
        words = bert.embeddings.word_embeddings(ids)
        n = ids.shape[0]
        ctx = self.ctx.to(device, words.dtype).expand(n, -1, -1)
        x = torch.cat([words[:, :1], ctx, words[:, 1:]], 1)
        mask = torch.cat([mask[:, :1], mask.new_ones(n, self.n_ctx), mask[:, 1:]], 1)
        hidden = bert(inputs_embeds=x, attention_mask=mask).last_hidden_state
        m = mask[..., None].to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return nnf.normalize(pooled.float(), dim=-1).to(self.ctx.device)


class DualStreamText(nn.Module):
    """frozen + w x prompted, renormalised; w a learnable scalar from `w_init` (0: the frozen
    stream exactly)."""

    def __init__(self, prompted: nn.Module, w_init: float = 0.0):
        super().__init__()
        self.prompted = prompted
        self.w = nn.Parameter(torch.tensor(float(w_init)))

    def forward(self, frozen: torch.Tensor, sentences: list[str]) -> torch.Tensor:
        return nnf.normalize(frozen + self.w * self.prompted(sentences).to(frozen.device), dim=-1)


class JointPrompt(nn.Module):
    """A learnable V x C prompt on ST-GCN's per-joint features [N, C, T, V] (the same for every
    frame): added ("add", C channels out) or concatenated to each joint's channels ("concat", 2C).
    Zero-initialised: "add" starts as the encoder's features."""

    def __init__(self, num_joints: int, channels: int, mode: str = "add"):
        super().__init__()
        if mode not in ("add", "concat"):
            raise ConfigError(f"scople: joint_prompt_mode must be add or concat, not {mode!r}")
        self.mode = mode
        self.prompt = nn.Parameter(torch.zeros(num_joints, channels))
        self.out_dim = channels * (2 if mode == "concat" else 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, c, t, v = features.shape
        p = self.prompt.t()[None, :, None, :].to(features.dtype)  # [1, C, 1, V]
        if self.mode == "add":
            return features + p
        return torch.cat([features, p.expand(n, c, t, v)], 1)


def joint_tokens(features: torch.Tensor, frame_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, C, T, V] and the valid frames [N, T] -> tokens [N, T*V, C] (frame-major) and their mask
    [N, T*V]. A sequence with no valid frame keeps all its tokens (an empty softmax has no answer)."""
    n, c, t, v = features.shape
    tokens = features.permute(0, 2, 3, 1).reshape(n, t * v, c)
    mask = frame_mask.bool()
    mask = torch.where(mask.any(1, keepdim=True), mask, torch.ones_like(mask))
    return tokens, mask[:, :, None].expand(n, t, v).reshape(n, t * v)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[N, L, C], [N, L] -> [N, C]: the mean over the valid tokens (the sampler switched off)."""
    w = mask.to(tokens.dtype)[..., None]
    return (tokens * w).sum(1) / w.sum(1).clamp(min=1)


class AdaptiveSampler(nn.Module):
    """Each class text embedding queries the skeleton's joint x time tokens: one-head scaled
    dot-product attention (queries from the text, keys from the tokens, the tokens themselves as
    values), padded frames masked out. Returns the class-conditioned features [N, K, C] and the
    attention [N, K, L] (each row sums to 1 over the valid tokens)."""

    def __init__(self, text_dim: int, token_dim: int, dim: int):
        super().__init__()
        self.q = nn.Linear(text_dim, dim)
        self.k = nn.Linear(token_dim, dim)
        self.scale = 1 / math.sqrt(dim)

    def forward(self, class_emb: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q(class_emb.to(tokens.dtype))  # [K, d]
        k = self.k(tokens)  # [N, L, d]
        scores = torch.einsum("kd,nld->nkl", q, k) * self.scale
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        attn = scores.softmax(-1)
        return torch.einsum("nkl,nlc->nkc", attn, tokens), attn


def multi_positive_contrastive(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Symmetric skeleton-text contrastive loss over a batch whose samples of the same class are
    positives to each other. `logits` [B, C] score every sample against every training class; the
    batch's pair matrix is S[i, j] = logits[i, label_j] (sample i against sample j's class text).
    Each direction is the cross-entropy between softmax(S) and the uniform distribution over the
    row's (column's) positives."""
    s = logits[:, labels]  # [B, B]
    pos = (labels[:, None] == labels[None, :]).to(s.dtype)
    to_text = -(pos / pos.sum(1, keepdim=True) * s.log_softmax(1)).sum(1).mean()
    to_skeleton = -(pos / pos.sum(0, keepdim=True) * s.log_softmax(0)).sum(0).mean()
    return (to_text + to_skeleton) / 2
