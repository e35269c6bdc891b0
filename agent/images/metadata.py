"""The image store's metadata in sqlite: images, their layers, references and holds.

Blobs and layers are written before the rows that name them, and each change
is one transaction, so after a crash every image in the database is whole.
Callers serialise access (the ImageStore holds a lock around every call).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kran import errors

SCHEMA_VERSION = 4  # 2: holds; 3: repo_digests, layer_sources; 4: build_cache

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,              -- sha256:<config digest>
    manifest_digest TEXT NOT NULL,
    size INTEGER NOT NULL,            -- bytes of the unpacked layers
    created TEXT NOT NULL,            -- the config's "created", RFC 3339
    added REAL NOT NULL               -- when it entered this store (unix time)
);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,        -- 0 = base layer
    diff_id TEXT NOT NULL,            -- also the digest of the stored layer blob
    chain_id TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE TABLE IF NOT EXISTS refs (
    name TEXT PRIMARY KEY,            -- full form: docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS refs_image ON refs(image_id);
CREATE TABLE IF NOT EXISTS holds (
    holder TEXT PRIMARY KEY,          -- a container id: its image must stay
    image_id TEXT NOT NULL REFERENCES images(id)  -- no cascade: a held image cannot go
);
CREATE INDEX IF NOT EXISTS holds_image ON holds(image_id);
CREATE TABLE IF NOT EXISTS repo_digests (
    name TEXT NOT NULL,               -- repository, full form: docker.io/library/busybox
    digest TEXT NOT NULL,             -- the registry's manifest digest for it
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (name, digest)
);
CREATE INDEX IF NOT EXISTS repo_digests_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS layer_sources (
    diff_id TEXT NOT NULL,            -- a layer (uncompressed) ...
    digest TEXT NOT NULL,             -- ... and a compressed blob of it
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    registry TEXT NOT NULL,           -- where that blob is: host[:port], "" = made here
    repository TEXT NOT NULL,         -- path inside the registry
    PRIMARY KEY (diff_id, digest, registry, repository)
);
CREATE TABLE IF NOT EXISTS build_cache (
    key TEXT PRIMARY KEY,             -- a build step: its parent and instruction (agent.build.cache)
    image_id TEXT NOT NULL,           -- the config the step made (a blob, as an image's)
    manifest_digest TEXT NOT NULL,
    size INTEGER NOT NULL,
    created TEXT NOT NULL,
    made REAL NOT NULL                -- when a build made it (unix time)
);
CREATE TABLE IF NOT EXISTS build_cache_layers (
    key TEXT NOT NULL REFERENCES build_cache(key) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    PRIMARY KEY (key, position)
);
"""


@dataclass(frozen=True)
class ImageRow:
    """One image as recorded: ids, size, creation time and its layers base first."""

    id: str
    manifest_digest: str
    size: int
    created: str
    added: float
    diff_ids: tuple[str, ...]
    chain_ids: tuple[str, ...]

    def blobs(self) -> set[str]:
        """The digests of every blob this image needs: config, manifest, layers."""
        return {self.id, self.manifest_digest, *self.diff_ids}


@dataclass(frozen=True)
class LayerSource:
    """A compressed blob of a layer known to be in a registry repository (or made here: registry "")."""

    diff_id: str
    digest: str
    media_type: str
    size: int
    registry: str = ""
    repository: str = ""


class Metadata:
    """The sqlite database at `path` (WAL mode, foreign keys on)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _migrate(self) -> None:
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] < SCHEMA_VERSION:  # the statements above added what was missing
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise errors.FailedPrecondition(
                    f"image metadata schema {row[0]} is newer than this agent understands "
                    f"({SCHEMA_VERSION}); upgrade kran-agent")

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # Reads.

    def _layers(self, image_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        rows = self._db.execute(
            "SELECT diff_id, chain_id FROM image_layers WHERE image_id = ? ORDER BY position",
            (image_id,)).fetchall()
        return tuple(r[0] for r in rows), tuple(r[1] for r in rows)

    def _row(self, row: tuple) -> ImageRow:
        diff_ids, chain_ids = self._layers(row[0])
        return ImageRow(row[0], row[1], row[2], row[3], row[4], diff_ids, chain_ids)

    def images(self) -> list[ImageRow]:
        """Every image, newest first."""
        rows = self._db.execute(
            "SELECT id, manifest_digest, size, created, added FROM images ORDER BY created DESC, id")
        return [self._row(r) for r in rows.fetchall()]

    def image(self, image_id: str) -> ImageRow | None:
        """The image `image_id` ("sha256:<hex>"), or None."""
        row = self._db.execute(
            "SELECT id, manifest_digest, size, created, added FROM images WHERE id = ?",
            (image_id,)).fetchone()
        return None if row is None else self._row(row)

    def ids_with_prefix(self, hex_prefix: str) -> list[str]:
        """Ids of the images whose hex digits start with `hex_prefix` (only [a-f0-9] accepted)."""
        low = "sha256:" + hex_prefix
        high = low + "g"  # every hex id with that prefix sorts between the two
        rows = self._db.execute("SELECT id FROM images WHERE id >= ? AND id < ?", (low, high))
        return [r[0] for r in rows.fetchall()]

    def refs_of(self, image_id: str) -> list[str]:
        """The references (full form) naming `image_id`, sorted."""
        rows = self._db.execute("SELECT name FROM refs WHERE image_id = ? ORDER BY name", (image_id,))
        return [r[0] for r in rows.fetchall()]

    def lookup(self, name: str) -> str | None:
        """The image id the reference `name` (full form) points at, or None."""
        row = self._db.execute("SELECT image_id FROM refs WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def referenced_blobs(self) -> set[str]:
        """Digests of every blob some image or build cache entry needs."""
        rows = self._db.execute(
            "SELECT id FROM images UNION SELECT manifest_digest FROM images "
            "UNION SELECT diff_id FROM image_layers UNION SELECT image_id FROM build_cache "
            "UNION SELECT manifest_digest FROM build_cache UNION SELECT diff_id FROM build_cache_layers")
        return {r[0] for r in rows.fetchall()}

    def referenced_chains(self) -> set[str]:
        """Chain ids of every layer some image or build cache entry needs."""
        rows = self._db.execute(
            "SELECT chain_id FROM image_layers UNION SELECT chain_id FROM build_cache_layers")
        return {r[0] for r in rows.fetchall()}

    def image_chains(self) -> set[str]:
        """Chain ids of every layer some image (not the build cache) needs."""
        return {r[0] for r in self._db.execute("SELECT DISTINCT chain_id FROM image_layers").fetchall()}

    def build_cache(self, key: str) -> ImageRow | None:
        """The result of the build step `key`, or None."""
        row = self._db.execute(
            "SELECT image_id, manifest_digest, size, created, made FROM build_cache WHERE key = ?",
            (key,)).fetchone()
        return None if row is None else self._cache_row(key, row)

    def _cache_row(self, key: str, row: tuple) -> ImageRow:
        layers = self._db.execute(
            "SELECT diff_id, chain_id FROM build_cache_layers WHERE key = ? ORDER BY position", (key,)).fetchall()
        return ImageRow(row[0], row[1], row[2], row[3], row[4],
                        tuple(r[0] for r in layers), tuple(r[1] for r in layers))

    def build_cache_entries(self) -> dict[str, ImageRow]:
        """Every build cache entry by key."""
        rows = self._db.execute(
            "SELECT key, image_id, manifest_digest, size, created, made FROM build_cache ORDER BY key").fetchall()
        return {r[0]: self._cache_row(r[0], r[1:]) for r in rows}

    def repo_digests_of(self, image_id: str) -> list[tuple[str, str]]:
        """(repository, manifest digest) pairs a registry gave `image_id`, sorted."""
        rows = self._db.execute("SELECT name, digest FROM repo_digests WHERE image_id = ? ORDER BY name, digest",
                                (image_id,))
        return [(r[0], r[1]) for r in rows.fetchall()]

    def lookup_digest(self, name: str, digest: str) -> str | None:
        """The image the registry digest `digest` of repository `name` names, or None."""
        row = self._db.execute("SELECT image_id FROM repo_digests WHERE name = ? AND digest = ?",
                               (name, digest)).fetchone()
        return None if row is None else row[0]

    def layer_sources(self, diff_id: str) -> list[LayerSource]:
        """Every compressed blob of the layer `diff_id` known here."""
        rows = self._db.execute(
            "SELECT diff_id, digest, media_type, size, registry, repository FROM layer_sources "
            "WHERE diff_id = ? ORDER BY registry, repository, digest", (diff_id,))
        return [LayerSource(*r) for r in rows.fetchall()]

    def holders_of(self, image_id: str) -> list[str]:
        """The holders (container ids) keeping `image_id`, sorted."""
        rows = self._db.execute("SELECT holder FROM holds WHERE image_id = ? ORDER BY holder", (image_id,))
        return [r[0] for r in rows.fetchall()]

    def holders(self) -> set[str]:
        """Every holder."""
        return {r[0] for r in self._db.execute("SELECT holder FROM holds").fetchall()}

    def count(self) -> int:
        """How many images there are."""
        return self._db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    # Writes, each one transaction.

    def add(self, images: Iterable[ImageRow], refs: Iterable[tuple[str, str]],
            repo_digests: Iterable[tuple[str, str, str]] = (), sources: Iterable[LayerSource] = ()) -> None:
        """Record `images` (already present ones are kept) and point each (name, image id) ref.

        Also records (repository, manifest digest, image id) triples a
        registry gave and the compressed blobs known for layers.
        """
        with self._transaction() as db:
            for image in images:
                db.execute(
                    "INSERT OR IGNORE INTO images (id, manifest_digest, size, created, added) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (image.id, image.manifest_digest, image.size, image.created, image.added))
                db.executemany(
                    "INSERT OR IGNORE INTO image_layers (image_id, position, diff_id, chain_id) "
                    "VALUES (?, ?, ?, ?)",
                    [(image.id, i, d, c) for i, (d, c) in enumerate(zip(image.diff_ids, image.chain_ids))])
            db.executemany("INSERT OR REPLACE INTO refs (name, image_id) VALUES (?, ?)", list(refs))
            db.executemany("INSERT OR REPLACE INTO repo_digests (name, digest, image_id) VALUES (?, ?, ?)",
                           list(repo_digests))
            db.executemany(
                "INSERT OR IGNORE INTO layer_sources (diff_id, digest, media_type, size, registry, repository) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(s.diff_id, s.digest, s.media_type, s.size, s.registry, s.repository) for s in sources])

    def set_ref(self, name: str, image_id: str) -> None:
        """Point the reference `name` at `image_id`, moving it if it named another image."""
        self.add((), [(name, image_id)])

    def delete_ref(self, name: str) -> None:
        """Remove the reference `name`."""
        with self._transaction() as db:
            db.execute("DELETE FROM refs WHERE name = ?", (name,))

    def delete_repo_digest(self, name: str, digest: str) -> None:
        """Forget the registry digest `digest` of repository `name` (full form)."""
        with self._transaction() as db:
            db.execute("DELETE FROM repo_digests WHERE name = ? AND digest = ?", (name, digest))

    def delete_image(self, image_id: str) -> None:
        """Remove the image `image_id` with its layers and references."""
        with self._transaction() as db:
            db.execute("DELETE FROM images WHERE id = ?", (image_id,))


    def put_build_cache(self, key: str, row: ImageRow) -> None:
        """Record `row` as the result of the build step `key`, replacing an earlier one."""
        with self._transaction() as db:
            db.execute("DELETE FROM build_cache WHERE key = ?", (key,))
            db.execute("INSERT INTO build_cache (key, image_id, manifest_digest, size, created, made) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (key, row.id, row.manifest_digest, row.size, row.created, row.added))
            db.executemany("INSERT INTO build_cache_layers (key, position, diff_id, chain_id) VALUES (?, ?, ?, ?)",
                           [(key, i, d, c) for i, (d, c) in enumerate(zip(row.diff_ids, row.chain_ids))])

    def delete_build_cache(self, keys: Iterable[str]) -> None:
        """Forget the build steps `keys`."""
        with self._transaction() as db:
            db.executemany("DELETE FROM build_cache WHERE key = ?", [(k,) for k in keys])

    def add_hold(self, holder: str, image_id: str) -> None:
        """Keep `image_id` for `holder` (one image per holder)."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO holds (holder, image_id) VALUES (?, ?)", (holder, image_id))

    def delete_holds(self, holders: Iterable[str]) -> None:
        """Let go of what `holders` kept."""
        with self._transaction() as db:
            db.executemany("DELETE FROM holds WHERE holder = ?", [(h,) for h in holders])


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
