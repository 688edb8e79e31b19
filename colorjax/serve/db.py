"""The app's SQLite database: users, log-in sessions, failed log-ins and the history of colorized images.

Stdlib `sqlite3` in WAL mode (readers never wait for the one writer), one connection shared by the app's threads
behind a lock: every statement here is a few rows, so the lock is never held long. The schema is versioned with
`PRAGMA user_version`; `Database` migrates an older file forward when it opens it and refuses a newer one.
Secrets are never stored: passwords as scrypt hashes (`auth`), session ids and API tokens as SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path

from colorjax import ColorjaxError

SCHEMA_VERSION = 5

_MIGRATIONS = {
    1: """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        api_token_hash TEXT UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        expires REAL NOT NULL
    );
    CREATE TABLE login_failures (
        username TEXT NOT NULL,
        ip TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX login_failures_by_user_ip ON login_failures (username, ip, at);
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        was_color INTEGER NOT NULL,
        temperature REAL,
        created REAL NOT NULL
    );
    CREATE INDEX images_by_user ON images (user_id, created);
    """,
    # The colour points (a JSON list, as the API takes them) a SIGGRAPH17 colorization was last coloured with.
    2: "ALTER TABLE images ADD COLUMN hints TEXT;",
    # The name of the model (of the server's --weights/--workdir) that made the colorization; NULL before version 3.
    3: "ALTER TABLE images ADD COLUMN model TEXT;",
    # The model of the colorization kept for comparison when an item was re-coloured with another model.
    4: "ALTER TABLE images ADD COLUMN previous_model TEXT;",
    # When the user deleted the item (NULL: not deleted): its row and files stay for the undo window, then go.
    5: "ALTER TABLE images ADD COLUMN deleted REAL;",
}
# The columns of an `ImageRecord`, in its order.
_IMAGE_COLUMNS = "id, user_id, name, width, height, was_color, temperature, created, hints, model, previous_model"


class DatabaseError(ColorjaxError):
    """The database file cannot be used (written by a newer colorjax, or not a database); printed as one line."""


@dataclasses.dataclass(frozen=True)
class User:
    id: int
    username: str


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """One colorization in a user's history; its files live under the data dir's images/<id>/."""

    id: str
    user_id: int
    name: str  # The uploaded file's name, for display only (never used as a path).
    width: int
    height: int
    was_color: bool  # The upload was a colour photo, so the page can also show the original.
    temperature: float | None  # The annealed-mean temperature it was coloured with (eccv16), else None.
    created: float
    hints: list[dict] | None = None  # The colour points it was coloured with (hint-capable models), else None.
    model: str | None = None  # The server's name of the model that coloured it (None: made before version 3).
    previous_model: str | None = None  # The model of the colours kept for comparison (`previous` file), if any.


class Database:
    """The app's tables, behind methods that each run one short transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA foreign_keys=ON")
            self._lock = threading.Lock()
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise DatabaseError(
                f"Cannot open the database {self.path} ({e}); point --data-dir at another folder."
            ) from e

    def _migrate(self) -> None:
        version = self._connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"The database {self.path} has schema version {version}, newer than this colorjax "
                f"({SCHEMA_VERSION}); upgrade colorjax or use another --data-dir."
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._lock:
                self._connection.executescript(f"BEGIN; {_MIGRATIONS[target]} PRAGMA user_version = {target}; COMMIT;")

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def _execute(self, sql: str, parameters: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._connection.execute(sql, parameters)

    def _fetchone(self, sql: str, parameters: tuple = ()) -> tuple | None:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchone()

    def _fetchall(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    # Users -------------------------------------------------------------------------------------------------------

    def create_user(self, username: str, password_hash: str) -> User | None:
        """The new user, or None when the name is taken."""
        try:
            cursor = self._execute(
                "INSERT INTO users (username, password_hash, created) VALUES (?, ?, ?)",
                (username, password_hash, time.time()),
            )
        except sqlite3.IntegrityError:
            return None
        return User(cursor.lastrowid, username)

    def user_by_name(self, username: str) -> tuple[User, str] | None:
        """(user, password hash) or None."""
        row = self._fetchone("SELECT id, username, password_hash FROM users WHERE username = ?", (username,))
        return None if row is None else (User(row[0], row[1]), row[2])

    def set_password(self, user_id: int, password_hash: str) -> None:
        self._execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))

    def delete_user(self, user_id: int) -> None:
        """The user's row, and with it (ON DELETE CASCADE) their sessions, API token and image rows."""
        self._execute("DELETE FROM users WHERE id = ?", (user_id,))

    def user_by_api_token(self, token_hash: str) -> User | None:
        row = self._fetchone("SELECT id, username FROM users WHERE api_token_hash = ?", (token_hash,))
        return None if row is None else User(*row)

    def set_api_token(self, user_id: int, token_hash: str | None) -> None:
        self._execute("UPDATE users SET api_token_hash = ? WHERE id = ?", (token_hash, user_id))

    def has_api_token(self, user_id: int) -> bool:
        row = self._fetchone("SELECT api_token_hash FROM users WHERE id = ?", (user_id,))
        return row is not None and row[0] is not None

    # Sessions ----------------------------------------------------------------------------------------------------

    def create_session(self, id_hash: str, user_id: int, lifetime_s: float) -> None:
        now = time.time()
        with self._lock:
            self._connection.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            self._connection.execute(
                "INSERT INTO sessions (id_hash, user_id, expires) VALUES (?, ?, ?)",
                (id_hash, user_id, now + lifetime_s),
            )

    def session_user(self, id_hash: str) -> User | None:
        row = self._fetchone(
            "SELECT users.id, users.username FROM sessions JOIN users ON users.id = sessions.user_id "
            "WHERE sessions.id_hash = ? AND sessions.expires > ?",
            (id_hash, time.time()),
        )
        return None if row is None else User(*row)

    def delete_session(self, id_hash: str) -> None:
        self._execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    def delete_sessions(self, user_id: int) -> None:
        """Every session of the user (a changed password logs out every browser that knew the old one)."""
        self._execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    # Failed log-ins ----------------------------------------------------------------------------------------------

    def record_login_failure(self, username: str, ip: str, window_s: float) -> None:
        """Records a failed log-in, and forgets those older than `window_s` (no one asks about them again)."""
        now = time.time()
        with self._lock:
            self._connection.execute("DELETE FROM login_failures WHERE at <= ?", (now - window_s,))
            self._connection.execute(
                "INSERT INTO login_failures (username, ip, at) VALUES (?, ?, ?)", (username, ip, now)
            )

    def recent_login_failures(self, username: str, ip: str, window_s: float) -> tuple[list[float], list[float]]:
        """Times of the failed log-ins in the last `window_s` seconds, oldest first: (for this username from any
        address, from this address for any username)."""
        since = time.time() - window_s
        by_user = self._fetchall(
            "SELECT at FROM login_failures WHERE username = ? AND at > ? ORDER BY at", (username, since)
        )
        by_ip = self._fetchall("SELECT at FROM login_failures WHERE ip = ? AND at > ? ORDER BY at", (ip, since))
        return [row[0] for row in by_user], [row[0] for row in by_ip]

    def clear_login_failures(self, username: str) -> None:
        """After a log-in: the account's failures, from every address, are forgotten."""
        self._execute("DELETE FROM login_failures WHERE username = ?", (username,))

    # Images ------------------------------------------------------------------------------------------------------

    def add_image(self, record: ImageRecord) -> None:
        row = dataclasses.astuple(record)[:-3] + (_hints_text(record.hints), record.model, record.previous_model)
        self._execute(
            "INSERT INTO images (id, user_id, name, width, height, was_color, temperature, created, hints, model, "
            "previous_model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    def image(self, image_id: str, user_id: int) -> ImageRecord | None:
        """The image if it exists, is not deleted AND belongs to `user_id` (another user's id, or a deleted one,
        looks exactly like a missing one)."""
        row = self._fetchone(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ? AND user_id = ? AND deleted IS NULL", (image_id, user_id)
        )
        return None if row is None else _image_record(row)

    def history(self, user_id: int) -> list[ImageRecord]:
        """The user's images (not deleted), newest first."""
        rows = self._fetchall(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE user_id = ? AND deleted IS NULL "
            "ORDER BY created DESC, rowid DESC",
            (user_id,),
        )
        return [_image_record(row) for row in rows]

    def set_temperature(self, image_id: str, temperature: float | None) -> bool:
        """False when there is no such image (deleted meanwhile)."""
        return (
            self._execute(
                "UPDATE images SET temperature = ? WHERE id = ? AND deleted IS NULL", (temperature, image_id)
            ).rowcount
            > 0
        )

    def set_hints(self, image_id: str, hints: list[dict] | None) -> bool:
        """False when there is no such image (deleted meanwhile)."""
        return (
            self._execute(
                "UPDATE images SET hints = ? WHERE id = ? AND deleted IS NULL", (_hints_text(hints), image_id)
            ).rowcount
            > 0
        )

    def set_model(self, image_id: str, model: str, previous_model: str | None) -> bool:
        """False when there is no such image (deleted meanwhile)."""
        return (
            self._execute(
                "UPDATE images SET model = ?, previous_model = ? WHERE id = ? AND deleted IS NULL",
                (model, previous_model, image_id),
            ).rowcount
            > 0
        )

    def mark_deleted(self, image_id: str, user_id: int, at: float) -> bool:
        """Deletes the image for everything but `restore_image`: its row (and files) stay until `purge_deleted`.
        False when there is no such image of the user's (or it was deleted already)."""
        cursor = self._execute(
            "UPDATE images SET deleted = ? WHERE id = ? AND user_id = ? AND deleted IS NULL", (at, image_id, user_id)
        )
        return cursor.rowcount > 0

    def restore_image(self, image_id: str, user_id: int) -> bool:
        """Undoes `mark_deleted`; False when the image is not a deleted one of the user's (or was purged)."""
        cursor = self._execute(
            "UPDATE images SET deleted = NULL WHERE id = ? AND user_id = ? AND deleted IS NOT NULL", (image_id, user_id)
        )
        return cursor.rowcount > 0

    def deleted_image(self, image_id: str, user_id: int) -> tuple[ImageRecord, float] | None:
        """(the user's deleted image, when it was deleted), while it can still be restored; else None."""
        row = self._fetchone(
            f"SELECT {_IMAGE_COLUMNS}, deleted FROM images WHERE id = ? AND user_id = ? AND deleted IS NOT NULL",
            (image_id, user_id),
        )
        return None if row is None else (_image_record(row[:-1]), row[-1])

    def purge_deleted(self, before: float = float("inf")) -> list[str]:
        """Removes the rows of the images deleted before `before` (every deleted one by default) and returns their
        ids, for their files to go next. A row restored meanwhile is left alone: each row goes in one statement
        that checks it is still deleted."""
        ids = [row[0] for row in self._fetchall("SELECT id FROM images WHERE deleted <= ?", (before,))]
        return [
            image_id
            for image_id in ids
            if self._execute("DELETE FROM images WHERE id = ? AND deleted <= ?", (image_id, before)).rowcount
        ]

    def oldest_deletion(self) -> float | None:
        """When the oldest item still marked deleted was deleted; None when there is none."""
        return self._fetchone("SELECT MIN(deleted) FROM images")[0]

    def delete_user_images(self, user_id: int) -> list[str]:
        """Removes every image row of the user (deleted ones too) and returns their ids, for their files."""
        with self._lock:
            ids = [row[0] for row in self._connection.execute("SELECT id FROM images WHERE user_id = ?", (user_id,))]
            self._connection.execute("DELETE FROM images WHERE user_id = ?", (user_id,))
        return ids

    def image_count(self, user_id: int | None = None) -> int:
        """One user's images, or every user's (None); deleted ones do not count."""
        if user_id is None:
            return self._fetchone("SELECT COUNT(*) FROM images WHERE deleted IS NULL")[0]
        return self._fetchone("SELECT COUNT(*) FROM images WHERE user_id = ? AND deleted IS NULL", (user_id,))[0]

    def image_ids(self) -> set[str]:
        """Every user's image ids, deleted ones still in their undo window included (the image store's sweep at
        start keeps these)."""
        return {row[0] for row in self._fetchall("SELECT id FROM images")}


def _image_record(row: tuple) -> ImageRecord:
    image_id, user_id, name, width, height, was_color, temperature, created, hints, *models = row  # _IMAGE_COLUMNS
    hints = None if hints is None else json.loads(hints)
    return ImageRecord(image_id, user_id, name, width, height, bool(was_color), temperature, created, hints, *models)


def _hints_text(hints: list[dict] | None) -> str | None:
    return None if hints is None else json.dumps(hints, separators=(",", ":"))
