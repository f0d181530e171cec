"""The hub cache layout huggingface_hub v0.22.2 writes, recorded for SelfCascade's Hub tests.

Run from the repository root (needs ../shared/refenv, which has huggingface_hub 0.22.2; no internet):

    ../shared/refenv/python tests/reference/hub/make_hub_layout.py            # writes python_layout.json
    ../shared/refenv/python tests/reference/hub/make_hub_layout.py --check-ours CACHE_DIR

Default mode: serves a tiny diffusers-shaped repository (the files below; `.safetensors` as LFS files: 302 to a
CDN path with X-Linked-Etag = sha256 and X-Linked-Size, others as regular files with ETag = git blob sha1, every
answer with X-Repo-Commit) on 127.0.0.1, points huggingface_hub at it with HF_ENDPOINT, runs
`snapshot_download(REPO, revision="main")` into an empty cache and records every entry of that cache (folders,
files with their sha256, symlinks with their exact relative target, refs contents) in python_layout.json, with the
repository's files. The C# test (HubInteropTests) serves the same repository from its own loopback server,
downloads it with HubModelResolver and must produce exactly this layout, then resolves a cache rebuilt from this
record (huggingface_hub's own) with no network.

--check-ours CACHE_DIR: huggingface_hub reads a cache SelfCascade wrote (HubInteropTests keeps one when
SELFCASCADE_HUB_INTEROP_OUT=DIR is set): snapshot_download(local_files_only=True), hf_hub_download for every
file (local_files_only=True) comparing bytes, and scan_cache_dir() with no warnings; prints OK or fails.
"""
import base64
import hashlib
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

REPO = "selfcascade-test/tiny-pipeline"
COMMIT = hashlib.sha1(b"selfcascade hub interop v1").hexdigest()


def lfs_bytes(n):
    # A deterministic "weights" file the C# side rebuilds with the same formula.
    return bytes(((i * 31 + 7) % 251) for i in range(n))


FILES = {
    "model_index.json": b'{"_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.28.2", '
                        b'"scheduler": ["diffusers", "DDIMScheduler"], "tokenizer": ["transformers", "CLIPTokenizer"], '
                        b'"unet": ["diffusers", "UNet2DConditionModel"], "safety_checker": [null, null]}\n',
    "unet/config.json": b'{"_class_name": "UNet2DConditionModel", "sample_size": 8}\n',
    "unet/diffusion_pytorch_model.safetensors": lfs_bytes(300_000),
    "tokenizer/vocab.json": b'{"a</w>": 0, "b</w>": 1}\n',
    "tokenizer/merges.txt": b"#version: 0.2\n",
    "scheduler/scheduler_config.json": b'{"_class_name": "DDIMScheduler", "num_train_timesteps": 1000}\n',
}


def is_lfs(path):
    return path.endswith(".safetensors")


def git_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, code, headers, body=b"", head=False):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _route(self, head):
        path = unquote(urlparse(self.path).path)
        host = "http://localhost:%d" % self.server.server_address[1]
        if path == f"/api/models/{REPO}/revision/main":
            body = json.dumps({"id": REPO, "sha": COMMIT, "private": False, "downloads": 0, "likes": 0, "tags": [],
                               "siblings": [{"rfilename": f} for f in FILES]}).encode()
            return self._send(200, {"Content-Type": "application/json"}, body, head)
        prefix = f"/{REPO}/resolve/"
        if path.startswith(prefix):
            rev, _, file = path[len(prefix):].partition("/")
            if rev not in ("main", COMMIT):
                return self._send(404, {"X-Error-Code": "RevisionNotFound"}, b"", head)
            if file not in FILES:
                return self._send(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, b"", head)
            data = FILES[file]
            if is_lfs(file):
                return self._send(302, {"Location": f"{host}/cdn/{sha256(data)}", "X-Repo-Commit": COMMIT,
                                        "X-Linked-Etag": '"%s"' % sha256(data), "X-Linked-Size": str(len(data)),
                                        "ETag": '"%s"' % git_sha1(b"lfs pointer " + data[:16])}, b"", head)
            return self._send(200, {"X-Repo-Commit": COMMIT, "ETag": '"%s"' % git_sha1(data)}, data, head)
        if path.startswith("/cdn/"):
            for f, data in FILES.items():
                if is_lfs(f) and sha256(data) == path[5:]:
                    return self._send(200, {"Content-Type": "application/octet-stream"}, data, head)
        return self._send(404, {}, b"", head)

    def do_HEAD(self):
        self._route(True)

    def do_GET(self):
        self._route(False)


def layout(cache):
    entries = []
    for dirpath, dirnames, filenames in os.walk(cache):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, cache).replace(os.sep, "/")
            if rel.startswith(".locks"):
                continue  # lock files: created by both, not part of what readers use
            if os.path.islink(full):
                entries.append({"path": rel, "kind": "link", "target": os.readlink(full)})
            elif os.path.isdir(full):
                entries.append({"path": rel, "kind": "dir"})
            else:
                data = open(full, "rb").read()
                e = {"path": rel, "kind": "file", "sha256": sha256(data), "size": len(data)}
                if "/refs/" in "/" + rel:
                    e["text"] = data.decode()
                entries.append(e)
    return sorted(entries, key=lambda e: e["path"])


def serve():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    server = serve()
    os.environ["HF_ENDPOINT"] = "http://127.0.0.1:%d" % server.server_address[1]
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "0"  # refenv's python sets it; the only server here is our loopback one
    from huggingface_hub import snapshot_download, __version__  # after HF_ENDPOINT: constants read it at import

    with tempfile.TemporaryDirectory() as cache:
        path = snapshot_download(REPO, revision="main", cache_dir=cache)
        assert path == os.path.join(cache, "models--" + REPO.replace("/", "--"), "snapshots", COMMIT), path
        record = {
            "made_by": f"huggingface_hub {__version__} snapshot_download (tests/reference/hub/make_hub_layout.py)",
            "repo": REPO, "commit": COMMIT, "revision": "main",
            "lfs_formula": "bytes[i] = (i * 31 + 7) % 251",
            "files": {f: ({"lfs_size": len(d)} if is_lfs(f) else {"text": d.decode()}) for f, d in FILES.items()},
            "layout": layout(cache),
        }
    server.shutdown()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "python_layout.json")
    with open(out, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{out}: {len(record['layout'])} entries")


def check_ours(cache):
    os.environ["HF_HUB_OFFLINE"] = "1"
    from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download

    path = snapshot_download(REPO, revision="main", cache_dir=cache, local_files_only=True)
    assert path.endswith(COMMIT), path
    for f, data in FILES.items():
        p = hf_hub_download(REPO, f, revision="main", cache_dir=cache, local_files_only=True)
        assert open(p, "rb").read() == data, f
    info = scan_cache_dir(cache)
    assert not info.warnings, info.warnings
    (repo,) = [r for r in info.repos if r.repo_id == REPO]
    (rev,) = list(repo.revisions)
    assert rev.commit_hash == COMMIT and "main" in rev.refs, (rev.commit_hash, rev.refs)
    assert sorted(f.file_name for f in rev.files) == sorted(os.path.basename(f) for f in FILES), rev.files
    print(f"OK: huggingface_hub read {len(FILES)} files of {REPO}@main ({COMMIT}) from {cache}; scan_cache_dir: "
          f"{repo.nb_files} files, {repo.size_on_disk} bytes, no warnings")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check-ours":
        check_ours(sys.argv[2])
    else:
        main()
