"""The local server's file store: ``/files`` uploads (multipart), contents and deletes.

The Batch API reads its input from an uploaded ``.jsonl`` file and writes its output and error
files here too (zhipu-api-2026.md §6). Files live in memory for the server's lifetime, like the
async task store; a file over the documented 100 MB is refused with HTTP 435 (the api-code page).
Upload response: ``FileObject{id, bytes, created_at, filename, object:"file", purpose, status,
status_details}`` with ids shaped like the recorded ``20240514_ea19d21b-…`` (ZSDK test).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Final

from .protocol import ApiError

__all__ = ["MAX_FILE_BYTES", "PURPOSES", "FileStore", "StoredFile", "parse_multipart"]

MAX_FILE_BYTES: Final = 100 * 1024 * 1024
PURPOSES: Final = ("fine-tune", "retrieval", "batch", "voice-clone-input")  # ZSDK's Literal
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)
_DISPOSITION = re.compile(r'(\w+)="([^"]*)"')


@dataclass(slots=True)
class StoredFile:
    """One file: its bytes and what ``FileObject`` says about it (``created_at`` in ms, as recorded)."""

    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.content), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "status_details": None}


def parse_multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """A ``multipart/form-data`` body as name -> (filename or None, bytes); 400/1210 when malformed."""
    match = _BOUNDARY.search(content_type or "")
    if not match or "multipart/form-data" not in content_type.lower():
        raise ApiError(400, "1210", "上传文件须使用 multipart/form-data 格式。")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in raw.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, sep, body = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        attrs = dict(_DISPOSITION.findall(head.decode("utf-8", "replace")))
        if "name" in attrs:
            fields[attrs["name"]] = (attrs.get("filename"), body[:-2] if body.endswith(b"\r\n") else body)
    return fields


class FileStore:
    """Thread-safe file id -> :class:`StoredFile`."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()

    def upload(self, raw: bytes, content_type: str, max_bytes: int = MAX_FILE_BYTES) -> dict[str, Any]:
        """``POST /files``: a ``file`` part and a ``purpose`` field; batch input must be ``.jsonl``."""
        fields = parse_multipart(raw, content_type)
        purpose = (fields.get("purpose") or (None, b""))[1].decode("utf-8", "replace").strip()
        if purpose not in PURPOSES:
            raise ApiError(400, "1214", f"purpose 参数非法，取值范围 {list(PURPOSES)}。")
        if "file" not in fields or fields["file"][0] is None:
            raise ApiError(400, "1214", "file 参数非法：请上传文件。")
        filename, content = fields["file"]
        assert filename is not None
        if len(content) > max_bytes:
            raise ApiError(435, "435", f"文件大小超过限制（{max_bytes / (1024 * 1024):g} MB）。")
        if purpose == "batch" and not filename.lower().endswith(".jsonl"):
            raise ApiError(400, "1214", "批处理文件须为 .jsonl 格式。")
        if not content.strip():
            raise ApiError(400, "1214", "文件内容为空。")
        return self.add(filename, purpose, content).to_json()

    def add(self, filename: str, purpose: str, content: bytes) -> StoredFile:
        """Store ``content`` under a new id (uploads, and the batches' output and error files)."""
        stored = StoredFile(f"{time.strftime('%Y%m%d')}_{uuid.uuid4()}", filename, purpose, content,
                            int(time.time() * 1000))
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile:
        """The file, or 404 (the real code for an unknown file id is [unconfirmed])."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(404, "1214", f"文件不存在：{file_id}")
        return stored

    def delete(self, file_id: str) -> dict[str, Any]:
        """``DELETE /files/{id}`` as ``FileDeleted{id, deleted, object}``."""
        self.get(file_id)
        with self._lock:
            self._files.pop(file_id, None)
        return {"id": file_id, "deleted": True, "object": "file"}

    def listing(self, purpose: str | None) -> dict[str, Any]:
        """``GET /files`` as ``ListOfFileObject``."""
        with self._lock:
            files = [f for f in self._files.values() if purpose in (None, "", f.purpose)]
        return {"object": "list", "data": [f.to_json() for f in files], "has_more": False}
