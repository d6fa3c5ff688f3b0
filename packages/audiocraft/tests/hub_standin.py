"""A local stand-in of the Hugging Face hub HTTP API, for push-then-load tests without the network.

It implements only what huggingface_hub (the pinned 2.x) calls for ``create_repo``, ``create_branch``,
``create_commit`` (preupload answering ``regular`` for every file, so small files travel inline, base64, in the
NDJSON commit; LFS and Xet are refused) and for ``hf_hub_download`` / ``snapshot_download`` (model info, ``HEAD`` /
``GET .../resolve/<revision>/<file>`` with the ``ETag``, ``X-Repo-Commit`` and ``Content-Length`` headers it checks).
Writes need an ``Authorization: Bearer`` header; private repos are hidden (404) without one. Point a process at it
with ``HF_ENDPOINT=<stand-in url>``. Every request is recorded in ``requests`` as ``(method, path)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    """One model repo: its branches (name -> commit id) and commits (id -> files, message)."""

    private: bool
    branches: dict[str, str] = field(default_factory=dict)
    trees: dict[str, dict[str, bytes]] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)

    def files(self, revision: str) -> dict[str, bytes] | None:
        """The files at a branch name or commit id, None if there is no such revision."""
        commit = self.branches.get(revision, revision)
        return self.trees.get(commit)


def _commit_id(parent: str, files: dict[str, bytes], message: str) -> str:
    digest = hashlib.sha1(parent.encode() + message.encode())
    for name in sorted(files):
        digest.update(name.encode() + hashlib.sha1(files[name]).digest())
    return digest.hexdigest()


class HubStandIn:
    """The stand-in server on 127.0.0.1 (a free port), as a context manager; ``url`` is its endpoint.

    Args:
        token: the one token that may write (None: any bearer token); others get HTTP 401.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HubStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # ---- the API -----------------------------------------------------------------------------------------
    def create_repo(self, body: dict[str, Any]) -> tuple[int, Any]:
        repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
        if repo_id in self.repos:
            return 409, {"error": "You already created this model repo", "url": f"{self.url}/{repo_id}"}
        private = body.get("visibility") == "private" or bool(body.get("private"))
        repo = Repo(private=private)
        initial = _commit_id("", {}, "initial commit")
        repo.trees[initial], repo.messages[initial], repo.branches["main"] = {}, "initial commit", initial
        self.repos[repo_id] = repo
        return 200, {"url": f"{self.url}/{repo_id}", "name": repo_id}

    def commit(self, repo_id: str, repo: Repo, revision: str, body: bytes) -> tuple[int, Any]:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next(line["value"] for line in lines if line["key"] == "header")
        if revision not in repo.branches:
            return 404, {"error": f"Invalid rev id: {revision}"}
        files = dict(repo.files(revision) or {})
        for line in lines:
            if line["key"] == "file":
                assert line["value"]["encoding"] == "base64"
                files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] in ("deletedFile", "deletedFolder"):
                files.pop(line["value"]["path"], None)
            elif line["key"] != "header":
                return 400, {"error": f"the stand-in does not implement {line['key']} operations"}
        message = header["summary"] + ("\n\n" + header["description"] if header.get("description") else "")
        commit = _commit_id(repo.branches[revision], files, message)
        repo.trees[commit], repo.messages[commit], repo.branches[revision] = files, message, commit
        return 200, {"commitUrl": f"{self.url}/{repo_id}/commit/{commit}", "commitOid": commit, "pullRequestUrl": None}

    def info(self, repo_id: str, repo: Repo, revision: str) -> tuple[int, Any]:
        files = repo.files(revision)
        if files is None:
            return 404, {"error": f"Invalid rev id: {revision}"}
        commit = repo.branches.get(revision, revision)
        siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(files.items())]
        return 200, {"id": repo_id, "modelId": repo_id, "sha": commit, "private": repo.private, "siblings": siblings}

    # ---- HTTP ----------------------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload or {}).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if not isinstance(payload, bytes):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _token(self) -> str | None:
                auth = self.headers.get("Authorization", "")
                return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

            def _repo(self, repo_id: str) -> Repo | None:
                repo = hub.repos.get(repo_id)
                if repo is None or (repo.private and self._token() is None):
                    self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    return None
                return repo

            def _route(self) -> None:
                path = urlsplit(self.path).path
                parts = [unquote(p) for p in path.strip("/").split("/")]
                body = self._body() if self.command == "POST" else b""
                with hub._lock:
                    hub.requests.append((self.command, path))
                    if self.command == "POST":
                        token = self._token()
                        if token is None or (hub.token is not None and token != hub.token):
                            return self._send(401, {"error": "Invalid username or password."})
                        hub.tokens.append(token)
                    if self.command == "POST" and parts == ["api", "repos", "create"]:
                        return self._send(*hub.create_repo(json.loads(body)))
                    if self.command == "POST" and parts == ["api", "validate-yaml"]:
                        return self._send(200, {"errors": [], "warnings": []})
                    if parts[:2] == ["api", "models"] and len(parts) >= 4:
                        repo_id = "/".join(parts[2:4])
                        repo = self._repo(repo_id)
                        if repo is None:
                            return None
                        rest = parts[4:]
                        if self.command == "GET" and not rest:
                            return self._send(*hub.info(repo_id, repo, "main"))
                        if self.command == "GET" and rest[0] == "revision":
                            return self._send(*hub.info(repo_id, repo, "/".join(rest[1:])))
                        if self.command == "GET" and rest[0] == "tree":
                            files = repo.files(rest[1])
                            if files is None:
                                return self._send(
                                    404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"}
                                )
                            entries = [
                                {"type": "file", "path": n, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                for n, d in sorted(files.items())
                            ]
                            return self._send(200, entries)
                        if self.command == "POST" and rest[0] == "preupload":
                            files = json.loads(body)["files"]
                            modes = [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                                for f in files
                            ]
                            return self._send(200, {"files": modes})
                        if self.command == "POST" and rest[0] == "commit":
                            return self._send(*hub.commit(repo_id, repo, "/".join(rest[1:]), body))
                        if self.command == "POST" and rest[0] == "branch":
                            branch = "/".join(rest[1:])
                            if branch in repo.branches:
                                return self._send(409, {"error": "Reference already exists"})
                            repo.branches[branch] = repo.branches["main"]
                            return self._send(200, {})
                    if self.command in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
                        repo = self._repo("/".join(parts[:2]))
                        if repo is None:
                            return None
                        revision, filename = parts[3], "/".join(parts[4:])
                        files = repo.files(revision)
                        if files is None:
                            return self._send(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
                        if filename not in files:
                            return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                        data = files[filename]
                        headers = {
                            "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                            "X-Repo-Commit": repo.branches.get(revision, revision),
                        }
                        return self._send(200, data, headers)
                return self._send(404, {"error": f"the stand-in does not implement {self.command} {path}"})

            do_GET = do_HEAD = do_POST = _route

        return Handler
