"""Operator tokens for the admin API, stored hashed.

``geoserver token add NAME`` makes a random 256-bit token, prints it once, and stores only its SHA-256 digest with
the operator's name and the layers it may change. A random 256-bit secret cannot be guessed, so a fast digest is
enough (slow password hashes exist for low-entropy passwords); comparison is constant-time. The tokens file is
``<data dir>/.geoserver/tokens.json`` or ``$GEOSERVER_TOKENS_FILE``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import orjson

from .errors import GeoServerError
from .store import STATE_DIRNAME, now_utc, write_bytes_atomic

TOKEN_PREFIX = "gsk_"
NAME_RE = re.compile(r"^[A-Za-z0-9_.@\-\u4e00-\u9fff]{1,64}$")


class TokenError(GeoServerError):
    code = "InvalidParameterValue"


@dataclass(frozen=True)
class Operator:
    """Who a valid token belongs to and what it may change (``*`` = every layer)."""

    name: str
    layers: tuple[str, ...]

    def may_edit(self, layer_id: str) -> bool:
        return "*" in self.layers or layer_id in self.layers


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_path(data_dir: Path) -> Path:
    return Path(os.environ.get("GEOSERVER_TOKENS_FILE") or Path(data_dir) / STATE_DIRNAME / "tokens.json")


class TokenStore:
    """Hashed tokens in one JSON file (rewritten atomically, mode 0600)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._cache: tuple[tuple, dict] | None = None

    def _load(self) -> dict:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, orjson.loads(self.path.read_bytes()) if st.st_size else {})
        return self._cache[1]

    def _save(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.path, orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.chmod(self.path, 0o600)

    def add(self, name: str, layers: tuple[str, ...] = ("*",)) -> str:
        """Create a token for ``name`` (replacing its old one) and return it: it is not stored anywhere."""
        if not NAME_RE.match(name):
            raise TokenError("operator name: 1-64 letters, digits, Chinese characters or _ . @ -", "name")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        data = dict(self._load())
        data[name] = {"sha256": digest(token), "layers": list(layers), "created": now_utc()}
        self._save(data)
        return token

    def revoke(self, name: str) -> bool:
        data = dict(self._load())
        if name not in data:
            return False
        del data[name]
        self._save(data)
        return True

    def list(self) -> list[dict]:
        return [{"name": k, "layers": v.get("layers", ["*"]), "created": v.get("created")}
                for k, v in sorted(self._load().items())]

    def verify(self, token: str | None) -> Operator | None:
        """The operator a token belongs to, or None."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        wanted = digest(token)
        found = None
        for name, entry in self._load().items():
            if hmac.compare_digest(wanted, str(entry.get("sha256", ""))):
                found = Operator(name, tuple(entry.get("layers", ["*"])))
        return found
