#!/usr/bin/env python3
"""A stand-in for the Hugging Face Hub on 127.0.0.1, for the tests (Python's standard library
only). It speaks the part of the Hub's protocol that model downloads use:

  GET  /api/models/ORG/NAME/revision/REV       {"id", "sha", "siblings": [{"rfilename"}]}
  GET  /api/models/ORG/NAME/tree/REV?recursive=true
                                               [{"type", "path", "size", "oid", "lfs"?}]
  HEAD|GET /ORG/NAME/resolve/REV/FILE          git files: 200 with ETag (the git blob id);
                                               LFS files: 302 to the CDN, with X-Linked-Etag
                                               (the sha256) and X-Linked-Size
  GET  /cdn/SHA256  (as host "localhost")      the LFS content, with Range requests (206)

Every answer carries X-Repo-Commit; a private repository answers 401 (X-Error-Code
RepoNotFound) without the right `Authorization: Bearer TOKEN`, as the Hub does. Repositories
are folders: REPOS/ORG/NAME/FILE... (revision "main"; the commit is a hash of the files).
Files ending in .bin, .safetensors, .onnx or .gz are LFS files.

    python3 tests/hub_standin.py --repos DIR [--private ORG/NAME] [--token T]
        [--cut-once FILE:BYTES] [--renamed OLD/NAME=NEW/NAME] [--log requests.jsonl]

prints its port on the first line of stdout, then serves until killed. --cut-once makes the
first CDN download of FILE stop after BYTES bytes (the connection closes mid-body); --renamed
answers requests for a repository's old name with a relative 307 to its new one, as the Hub
does for renamed repositories. The log has
one JSON line per request: method, path, host, whether an Authorization header came, Range.

Checked by hand against the real client (huggingface_hub 2.4):
    HF_ENDPOINT=http://127.0.0.1:PORT python3 -c \
      'from huggingface_hub import snapshot_download; print(snapshot_download("org/name"))'
"""
import argparse
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".bin", ".safetensors", ".onnx", ".gz")


def git_blob_id(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, repo_id, root):
        self.id = repo_id
        self.files = {}
        for p in sorted(root.rglob("*")):
            if p.is_file():
                self.files[p.relative_to(root).as_posix()] = p.read_bytes()
        h = hashlib.sha1()
        for name, data in sorted(self.files.items()):
            h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        self.commit = h.hexdigest()

    def is_lfs(self, name):
        return name.endswith(LFS_SUFFIXES)

    def entry(self, name):
        data = self.files[name]
        if not self.is_lfs(name):
            return {"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data)}
        sha = hashlib.sha256(data).hexdigest()
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(data)}\n".encode()
        return {
            "type": "file",
            "path": name,
            "size": len(data),
            "oid": git_blob_id(pointer),
            "lfs": {"oid": sha, "size": len(data), "pointerSize": len(pointer)},
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repos", required=True)
    ap.add_argument("--private", action="append", default=[])
    ap.add_argument("--token", default=None)
    ap.add_argument("--cut-once", default=None)
    ap.add_argument("--log", default=None)
    ap.add_argument("--renamed", action="append", default=[], help="OLD/NAME=NEW/NAME: 307 to the new name")
    args = ap.parse_args()

    repos = {}
    root = Path(args.repos)
    for org in sorted(p for p in root.iterdir() if p.is_dir()):
        for name in sorted(p for p in org.iterdir() if p.is_dir()):
            r = Repo(f"{org.name}/{name.name}", name)
            repos[r.id] = r
    blobs = {}
    for r in repos.values():
        for name, data in r.files.items():
            blobs[hashlib.sha256(data).hexdigest()] = (r, name, data)
    cut = None
    if args.cut_once:
        f, n = args.cut_once.rsplit(":", 1)
        cut = {"file": f, "bytes": int(n)}
    lock = threading.Lock()
    log = open(args.log, "a") if args.log else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def record(self):
            if log:
                with lock:
                    log.write(
                        json.dumps(
                            {
                                "method": self.command,
                                "path": self.path,
                                "host": self.headers.get("Host", ""),
                                "auth": "Authorization" in self.headers,
                                "range": self.headers.get("Range"),
                            }
                        )
                        + "\n"
                    )
                    log.flush()

        def answer(self, code, body=b"", headers=None, ctype="application/json"):
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def error(self, code, xcode, msg):
            self.answer(code, json.dumps({"error": msg}).encode(), {"X-Error-Code": xcode, "X-Error-Message": msg})

        def authorised(self, repo_id):
            if repo_id not in args.private:
                return True
            return self.headers.get("Authorization") == f"Bearer {args.token}"

        def repo_or_error(self, repo_id):
            r = repos.get(repo_id)
            if r is None or not self.authorised(repo_id):
                if "Authorization" not in self.headers or r is not None:
                    self.error(401, "RepoNotFound", "Repository Not Found: invalid credentials, private or missing")
                else:
                    self.error(404, "RepoNotFound", "Repository Not Found")
                return None
            return r

        def revision_ok(self, r, rev):
            if rev in ("main", r.commit):
                return True
            self.error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return False

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            self.record()
            url = urlsplit(self.path)
            for pair in args.renamed:
                old, new = pair.split("=")
                if f"/{old}/" in url.path:
                    moved = url.path.replace(f"/{old}/", f"/{new}/", 1)
                    return self.answer(307, b"", {"Location": moved + (f"?{url.query}" if url.query else "")}, "text/plain")
            parts = [unquote(p) for p in url.path.split("/") if p]
            if parts[:1] == ["cdn"] and len(parts) == 2:
                return self.cdn(parts[1])
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
                repo_id = f"{parts[2]}/{parts[3]}"
                r = self.repo_or_error(repo_id)
                if r is None or not self.revision_ok(r, parts[5]):
                    return
                if parts[4] == "revision":
                    body = {"id": r.id, "modelId": r.id, "sha": r.commit, "private": r.id in args.private,
                            "siblings": [{"rfilename": f} for f in r.files]}
                else:
                    body = [r.entry(f) for f in r.files]
                return self.answer(200, json.dumps(body).encode(), {"X-Repo-Commit": r.commit})
            if len(parts) >= 5 and parts[2] == "resolve":
                r = self.repo_or_error(f"{parts[0]}/{parts[1]}")
                if r is None or not self.revision_ok(r, parts[3]):
                    return
                name = "/".join(parts[4:])
                if name not in r.files:
                    return self.error(404, "EntryNotFound", f"{name} does not exist")
                e = r.entry(name)
                if "lfs" in e:
                    port = self.server.server_address[1]
                    headers = {
                        "X-Repo-Commit": r.commit,
                        "ETag": f'"{e["oid"]}"',
                        "X-Linked-Etag": f'"{e["lfs"]["oid"]}"',
                        "X-Linked-Size": str(e["size"]),
                        "Location": f"http://localhost:{port}/cdn/{e['lfs']['oid']}",
                    }
                    return self.answer(302, b"", headers, "text/plain")
                return self.answer(200, r.files[name], {"X-Repo-Commit": r.commit, "ETag": f'"{e["oid"]}"'},
                                   "application/octet-stream")
            self.error(404, "EntryNotFound", "no such endpoint")

        def cdn(self, sha):
            if sha not in blobs:
                return self.error(404, "EntryNotFound", "no such blob")
            r, name, data = blobs[sha]
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                if start >= len(data):
                    return self.answer(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{sha}"')
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command == "HEAD":
                return
            with lock:
                cutting = cut is not None and cut["file"] == name and start == 0
                if cutting:
                    cut["file"] = None  # once
            if cutting:
                self.wfile.write(body[: cut["bytes"]])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
