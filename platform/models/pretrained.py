"""Pretrained tags: what open_clip's registry says about them, where their weights lie, fetching.

A tag's weights are looked up on this machine first, so a cluster node with a warmed cache (or a
shared volume mounted as the cache) runs without network: the Hugging Face cache (`HF_HOME` /
`HF_HUB_CACHE`; open_clip downloads from the hub when a tag has a hub entry), then open_clip's
folder for URL downloads (`~/.cache/clip`). Only when neither holds them is the weights host probed,
once and with a short timeout, instead of letting the hub client retry for a minute.
`fetch_tag` downloads them (on a machine with internet) into that same cache.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from zsar.errors import ZsarError

HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
URL_CACHE = Path("~/.cache/clip")  # open_clip's download folder for tags without a hub entry


def tag_config(name: str, tag: str) -> dict:
    """open_clip's pretrained config of `name`/`tag` (URL, hub repo, preprocessing, quick_gelu)."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        raise ZsarError(
            f"backbone '{name}' has no pretrained tag '{tag}'; known tags: {', '.join(tags) or 'none'}"
            " (or pass a local weights file with --set backbone.checkpoint=PATH)"
        )
    return cfg


def tag_activation(name: str, tag: str) -> str:
    """The MLP activation the tag's weights were trained with ("quick_gelu" or "gelu")."""
    return "quick_gelu" if tag_config(name, tag).get("quick_gelu") else "gelu"


def _hub_entry(cfg: dict) -> tuple[str, tuple[str, ...]] | None:
    hub = cfg.get("hf_hub") or ""
    if not hub:
        return None
    if hub.endswith("/"):  # "org/model/": the repo, with open_clip's default file names
        return hub.rstrip("/"), HF_FILES
    repo, filename = os.path.split(hub)
    safe = (filename.rsplit(".", 1)[0] + ".safetensors",) if filename.endswith((".bin", ".pth")) else ()
    return repo, (*safe, filename)


def cached_file(name: str, tag: str) -> Path | None:
    """The local file holding the tag's weights, or None when this machine has not fetched them."""
    cfg = tag_config(name, tag)
    if cfg.get("file") and Path(cfg["file"]).is_file():
        return Path(cfg["file"])
    entry = _hub_entry(cfg)
    if entry:
        from huggingface_hub import try_to_load_from_cache

        repo, files = entry
        for filename in files:
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = cfg.get("url") or ""
    if url:
        local = URL_CACHE.expanduser() / os.path.basename(urlparse(url).path)
        if local.is_file() and local.stat().st_size > 0:
            return local
    return None


def _probe(url: str, timeout: float = 5.0) -> str | None:
    """None when `url`'s host answers on its port within `timeout`, else the reason."""
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    if not host:
        return f"bad URL {url!r}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as e:
        return f"{host} unreachable ({e.strerror or e})"


def download_blocker(name: str, tag: str) -> str | None:
    """None if the tag's weights can be downloaded from here; else why not (offline flags, no
    route to the host)."""
    cfg = tag_config(name, tag)
    if _hub_entry(cfg):
        from huggingface_hub import constants

        if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("ZSAR_OFFLINE"):
            return "offline mode is set (HF_HUB_OFFLINE / ZSAR_OFFLINE)"
        return _probe(constants.ENDPOINT)
    if cfg.get("url"):
        if os.environ.get("ZSAR_OFFLINE"):
            return "offline mode is set (ZSAR_OFFLINE)"
        return _probe(cfg["url"])
    return "no download location is known for it"


def cache_locations() -> str:
    from huggingface_hub import constants

    return f"the Hugging Face cache {constants.HF_HUB_CACHE} (HF_HOME) or {URL_CACHE}"


def weights_file(name: str, tag: str) -> Path:
    """The tag's weights file: from the local cache, else downloaded; a one-line error when
    neither is possible."""
    found = cached_file(name, tag)
    if found is not None:
        return found
    reason = download_blocker(name, tag)
    if reason:
        raise ZsarError(
            f"pretrained weights {name}/{tag} are not cached and cannot be downloaded: {reason}; "
            f"fetch them once where there is internet (`zsar weights fetch {tag} --model {name}`) and share "
            f"{cache_locations()}, or pass a local file with --set backbone.checkpoint=PATH (or use --set "
            f"backbone.name=zsar-tiny backbone.pretrained=null for random weights)"
        )
    return fetch_tag(name, tag)


def fetch_tag(name: str, tag: str) -> Path:
    """Download the tag's weights into the cache (a no-op when present) and return the file."""
    import open_clip

    found = cached_file(name, tag)
    if found is not None:
        return found
    reason = download_blocker(name, tag)
    if reason:
        raise ZsarError(f"cannot download {name}/{tag} from this machine: {reason}; run `zsar weights fetch {tag} "
                        f"--model {name}` on a machine with internet and copy {cache_locations()} here")
    try:
        return Path(open_clip.download_pretrained(tag_config(name, tag)))
    except Exception as e:  # network and hub errors: the user's environment, not a bug
        raise ZsarError(f"downloading {name}/{tag} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
