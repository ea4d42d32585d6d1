"""Deliberate errors in the methods' mathematics, each of which the fast tests must catch.

    python tests/mutations.py            # every mutation; prints killed/survived and the survivor count
    python tests/mutations.py --only 3 7 # some of them
    python tests/mutations.py --list     # what they are

Each mutation replaces one exact piece of source (it must occur exactly once, or the script stops:
the list has gone stale) in a temporary copy of the repository, never in the checkout. The copy's
package shadows the editable install through PYTHONPATH, and the fast tier runs there:
first the mutated method's equation tests, then its other test files (quick kills), then, if they all pass,
`python -m pytest tests/methods -x -q -m "not integration and not slow"`. A mutation survives only
when the whole fast tier passes. Sequential and CPU-bound (about half a minute a kill, two minutes a
survivor on 2 cores); run it under `nice`.

Last full run (issue 23, with the captions regime's three): 52 of 52 killed, 0 survivors, about 25 minutes on 2 loaded
cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = ["-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not integration and not slow"]

# (method, file, exact old text, new text, what the error is)
MUTATIONS: list[tuple[str, str, str, str, str]] = [
    # ------------------------------------------------------------------ sc_clip
    ("sc_clip", "methods/sc_clip.py", "return self.cfg.tau * emb.float() @ class_emb.float().t()",
     "return emb.float() @ class_emb.float().t() / self.cfg.tau", "tau as a temperature (cos / tau) instead of a scale"),
    ("sc_clip", "methods/sc_clip.py", "y[:, None].expand_as(masks.valid)", "y.roll(1)[:, None].expand_as(masks.valid)",
     "L_q supervised with another video's label"),
    ("sc_clip", "methods/sc_clip.py", '{"L_sc": 1.0, "L_a": cfg.alpha, "L_q": cfg.beta}',
     '{"L_sc": 1.0, "L_a": cfg.beta, "L_q": cfg.alpha}', "Eq. 7 weights swapped"),
    ("sc_clip", "methods/sc_clip_layers.py", "        patches = m.to(dtype)\n",
     "        patches = torch.zeros(m.shape, dtype=dtype, device=m.device)\n", "soft mask bias dropped"),
    ("sc_clip", "methods/sc_clip_layers.py", "        patches = m.to(dtype)\n", "        patches = -m.to(dtype)\n",
     "soft mask bias with the wrong sign"),
    ("sc_clip", "methods/sc_clip_sqg.py", "nnf.normalize(sums, dim=-1), centres)", "sums, centres)",
     "K-means centres not renormalised"),
    ("sc_clip", "methods/sc_clip_sqg.py", "    for _ in range(iters):\n", "    for _ in range(max(iters - 1, 0)):\n",
     "K-means one update short"),
    ("sc_clip", "methods/sc_clip_sqg.py", "(s, max(1, s // 2))", "(s, max(1, s // 2 + 1))", "Eq. 2 window stride off by one"),
    ("sc_clip", "methods/sc_clip_layers.py", "padded = nnf.pad(x, (0, 0, 0, 0, w, w))", "padded = nnf.pad(x, (0, 0, 0, 0, w + 1, w - 1))",
     "adapter window shifted by one frame (t-3..t+1)"),
    ("sc_clip", "methods/sc_clip.py", 'parts["L_sc"] = nnf.cross_entropy(self.scores(frames, class_emb).mean(1), y)',
     'parts["L_sc"] = nnf.cross_entropy(self.scores(frames, class_emb).amax(1), y)', "L_sc: max over frames instead of the mean"),
    ("sc_clip", "methods/sc_clip.py", "mean = (f_prime * present[..., None]).sum(2) / present.sum(2, keepdim=True).clamp(min=1)",
     "mean = f_prime.mean(2)", "Eq. 6 per-frame mean over all queries, present or not"),
    ("sc_clip", "methods/sc_clip.py", "f_prime = nnf.normalize(project(visual, out).float(), dim=-1)",
     "f_prime = nnf.normalize(project(visual, out).float(), dim=-2)", "F' normalised over the wrong axis"),
    ("sc_clip", "methods/sc_clip.py", "queries, second_last, m, cfg.mask_bias)", "queries, last, m, cfg.mask_bias)",
     "SCCA keys from the last layer instead of the second-last"),
    ("sc_clip", "methods/sc_clip_layers.py", "return sums / m.sum(-1, keepdim=True).clamp(min=1)", "return sums / m.shape[-1]",
     "Eq. 3 divides by all positions, not the mask's"),
    ("sc_clip", "methods/sc_clip.py", "return nnf.normalize(frames.mean(1), dim=-1)", "return frames.mean(1)",
     "L_a: adapter B's video embedding not renormalised (not a cosine)"),
    ("sc_clip", "methods/sc_clip_sqg.py", "linked = (sim >= torch.tensor", "linked = (sim > torch.tensor",
     "fusion at cos > delta instead of >="),
    ("sc_clip", "methods/sc_clip.py", 'parts["L_q"] = per_query[masks.valid.flatten()].mean()', 'parts["L_q"] = per_query.mean()',
     "L_q averaged over empty mask slots too"),
    ("sc_clip", "methods/sc_clip.py", "self.scores(self.adapter_b_embedding(last), class_emb), y)",
     "self.scores(self.adapter_b_embedding(last), class_emb), y.flip(0))", "L_a with the wrong labels"),
    # ------------------------------------------------------------------ mgsa
    ("mgsa", "methods/mgsa.py", "nnf.cross_entropy(pair, torch.zeros_like(y))", "nnf.cross_entropy(pair, torch.ones_like(y))",
     "negative-prompt target flipped (videos pulled toward 'not [class]')"),
    ("mgsa", "methods/mgsa.py", 'context = x if self.cfg.mab_context == "frames" else static', "context = motion",
     "MAB attends to the motion tokens instead of its context"),
    ("mgsa", "methods/mgsa_modules.py", "return motion + torch.tanh(self.gate) * out", "return motion + self.gate * out",
     "MAB gate without tanh"),
    ("mgsa", "methods/mgsa_modules.py", "kv = self.ln_kv(context)", "kv = self.ln_q(context)", "MAB context through the query's norm"),
    ("mgsa", "methods/mgsa_modules.py", "adapter = core if core.down.in_features == w else ProjectedAdapter(core, w, seed + i)",
     "adapter = core if core.down.in_features == w else Bottleneck(w, bottleneck)",
     "unequal widths: the text tower gets its own adapter instead of the shared one"),
    ("mgsa", "methods/mgsa_modules.py", "return even + detail / 2, detail, weights", "return even, detail, weights",
     "MSM static part is the even frame, not the pair mean"),
    ("mgsa", "methods/mgsa_modules.py", "            detail = odd - even\n", "            detail = even - odd\n",
     "MSM motion sign flipped"),
    ("mgsa", "methods/mgsa_modules.py", "((m @ s[..., None]).squeeze(-1) ** 2).mean()", "(m @ s[..., None]).squeeze(-1).abs().mean()",
     "decorrelation: |cos| instead of cos^2"),
    ("mgsa", "methods/mgsa_modules.py", "s = nnf.normalize((static * weights[..., None]).sum(1) / weights.sum(1, keepdim=True), dim=-1)",
     "s = nnf.normalize(static.mean(1), dim=-1)", "decorrelation: static tokens unweighted"),
    ("mgsa", "methods/mgsa.py", "ce = nnf.cross_entropy(scale * v @ pos.t(), y)", "ce = nnf.cross_entropy(v @ pos.t() / scale, y)",
     "logit scale used as a temperature"),
    ("mgsa", "methods/mgsa.py", "pos - self.cfg.gamma_neg * neg", "pos + self.cfg.gamma_neg * neg", "inference adds the negative prompt"),
    ("mgsa", "methods/mgsa.py", "s = (static * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)", "s = static.mean(1)",
     "static path ignores the frame counts of an odd last pair"),
    ("mgsa", "methods/mgsa.py", "(v * neg[y]).sum(-1)", "(v * neg[y.roll(1)]).sum(-1)", "negative prompt of another class"),
    # ------------------------------------------------------------------ cezsar
    ("cezsar", "methods/cezsar.py", "loss = triplet_loss(v, t_pos, self.text(self.bank_features[neg_rows]), self.cfg.margin)",
     "loss = triplet_loss(v, self.text(self.bank_features[neg_rows]), t_pos, self.cfg.margin)", "triplet: positive and negative swapped"),
    ("cezsar", "methods/cezsar.py", "pos_rows = self.class_rows[y, pick]", "pos_rows = self.class_rows[y.roll(1), pick]",
     "positive sentence of another video's class"),
    ("cezsar", "methods/cezsar_parts.py", "(distance > low)", "(distance >= low)", "band's low end inclusive (duplicates become negatives)"),
    ("cezsar", "methods/cezsar_parts.py", "other = owner != owner[row]", "other = torch.ones_like(owner, dtype=torch.bool)",
     "negatives may come from the positive's own class"),
    ("cezsar", "methods/cezsar.py", "feats = nnf.normalize(feats, dim=-1)", "feats = nnf.normalize(feats, dim=1)",
     "frame features L2-normalised over time instead of channels"),
    ("cezsar", "methods/cezsar_parts.py", "w = mask.to(x.dtype).unsqueeze(-1)", "w = torch.ones_like(mask, dtype=x.dtype).unsqueeze(-1)",
     "temporal mean over padded steps"),
    ("cezsar", "methods/cezsar.py", "src_key_padding_mask=~mask", "src_key_padding_mask=None", "transformer attends to padding"),
    ("cezsar", "methods/cezsar.py", "part.mean(0) for part in torch.split", "part.sum(0) for part in torch.split",
     "prototype is the sum, not the mean, of its sentences"),
    ("cezsar", "methods/cezsar.py", "return self.cfg.logit_scale * v @ nnf.normalize(class_emb, dim=-1).t()",
     "return v @ nnf.normalize(class_emb, dim=-1).t() / self.cfg.logit_scale", "logit scale used as a temperature"),
    ("cezsar", "methods/cezsar_parts.py", "logits = torch.cat([pos, neg], 1) / temperature", "logits = torch.cat([pos, neg], 1) * temperature",
     "InfoNCE temperature multiplies"),
    ("cezsar", "platform/models/text.py", "    if labels.verbatim:\n        return [[name] for name in labels.names]\n", "",
     "captions regime: a segment's caption wrapped in class templates instead of its own positive"),
    ("cezsar", "methods/cezsar.py", "return nn.ReLU() if cfg.public_projections else nn.Identity()", "return nn.Identity()",
     "public projections without their ReLUs"),
    ("cezsar", "methods/cezsar.py", "            xavier(self.inp, self.out)\n", "            pass\n",
     "public projections keep PyTorch's default init"),
    # ------------------------------------------------------------------ scople
    ("scople", "methods/scople_modules.py", "self.scale = 1 / math.sqrt(dim)", "self.scale = math.sqrt(dim)",
     "sampler scaled by sqrt(d) instead of 1/sqrt(d)"),
    ("scople", "methods/scople_modules.py", 'scores = scores.masked_fill(~mask[:, None, :], float("-inf"))', "scores = scores",
     "sampler attends to padded frames"),
    ("scople", "methods/scople_modules.py", "frozen + self.w * self.prompted(sentences)", "frozen - self.w * self.prompted(sentences)",
     "prompted stream subtracted"),
    ("scople", "methods/scople_modules.py", "to_skeleton = -(pos / pos.sum(0, keepdim=True) * s.log_softmax(0)).sum(0).mean()",
     "to_skeleton = -(pos / pos.sum(0, keepdim=True) * s.log_softmax(1)).sum(0).mean()", "text-to-skeleton softmax over the wrong axis"),
    ("scople", "methods/scople_modules.py", "            return features + p\n", "            return features - p\n", "joint prompt subtracted"),
    ("scople", "methods/scople_modules.py", "tokens = features.permute(0, 2, 3, 1).reshape(n, t * v, c)",
     "tokens = features.permute(0, 3, 2, 1).reshape(n, t * v, c)", "tokens joint-major while the mask is frame-major"),
    ("scople", "methods/scople.py", 'return self.logit_scale() * self.similarities(batch["skeleton"], class_emb)',
     'return self.similarities(batch["skeleton"], class_emb) / self.logit_scale()', "logit scale used as a temperature"),
    ("scople", "methods/scople.py", "return (emb * class_emb[None]).sum(-1)", "return (emb[:, :1] * class_emb[None]).sum(-1)",
     "every class scored with class 0's conditioned feature"),
]

# None of the listed mutations is equivalent; when one is, say why here:
EQUIVALENT: dict[int, str] = {}


def make_copy() -> Path:
    """The repository's source, tests and config in a temporary folder, with a `zsar` package laid
    out as the editable install maps it (platform/ as zsar, methods/ as zsar.methods)."""
    tmp = Path(tempfile.mkdtemp(prefix="zsar-mutations-"))
    for name in ("pyproject.toml", "platform", "methods", "tests"):
        src = ROOT / name
        (shutil.copytree(src, tmp / name, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir()
         else shutil.copy2(src, tmp / name))
    pkg = tmp / "_pkg" / "zsar"
    pkg.parent.mkdir()
    pkg.symlink_to(tmp / "platform")
    (tmp / "platform" / "methods").symlink_to(tmp / "methods")
    return tmp


def run_tests(copy: Path, targets: list[str]) -> bool:
    env = {**os.environ, "PYTHONPATH": f"{copy / '_pkg'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, *FAST, *targets], cwd=copy, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc.returncode == 0


def check_copy(copy: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(copy / "_pkg")}
    out = subprocess.run([sys.executable, "-c", "import zsar.methods.sc_clip as m; print(m.__file__)"], cwd=copy, env=env,
                         capture_output=True, text=True)
    if str(copy) not in out.stdout:
        sys.exit(f"mutations: the copy's package does not shadow the installed one ({out.stdout.strip() or out.stderr.strip()})")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=int, nargs="+", help="mutation numbers (from --list)")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    chosen = args.only or list(range(len(MUTATIONS)))
    if args.list:
        for i, (method, path, _, _, what) in enumerate(MUTATIONS):
            print(f"{i:3d} {method:8s} {path}: {what}")
        return 0
    for i in chosen:  # stale entries stop the run before anything is spent
        method, path, old, new, _ = MUTATIONS[i]
        count = (ROOT / path).read_text().count(old)
        if count != 1:
            sys.exit(f"mutations: #{i} expects its text exactly once in {path}, found {count}")
    copy = make_copy()
    try:
        check_copy(copy)
        survivors = []
        for i in chosen:
            method, path, old, new, what = MUTATIONS[i]
            target = copy / path
            original = target.read_text()
            target.write_text(original.replace(old, new))
            start = time.time()
            try:
                files = sorted(str(p.relative_to(copy)) for p in (copy / "tests" / "methods").glob(f"test_{method}*.py"))
                equations = [f for f in files if f.endswith("_equations.py")]
                alive = all(run_tests(copy, stage) for stage in (equations, files, ["tests/methods"]) if stage)
            finally:
                target.write_text(original)
            verdict = "SURVIVED" if alive else "killed"
            if alive:
                survivors.append(i)
            note = f" (equivalent: {EQUIVALENT[i]})" if i in EQUIVALENT else ""
            print(f"{i:3d} {verdict:8s} {method:8s} {what}{note}  [{time.time() - start:.0f}s]", flush=True)
        print(f"survivors: {len(survivors)} of {len(chosen)}" + (f" ({', '.join(map(str, survivors))})" if survivors else ""))
        return 1 if set(survivors) - set(EQUIVALENT) else 0
    finally:
        shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
