"""API tokens of the web service: one secret per token, stored only as its sha256.

A token is 32 random bytes (``secrets.token_urlsafe``), so a plain sha256 of it cannot be
reversed or guessed: no slow password hash is needed, and looking a token up is one indexed
query. The secret is shown once, when ``awe web token`` creates it; the database keeps its
hash, its owner, when it was made and last used, and whether it was revoked.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from awe.db.database import Database
from awe.db.jobs import user_id
from awe.db.models import NAME_LENGTH, Base, User, UTCDateTime, utcnow

#: Bytes of randomness in a token.
TOKEN_BYTES = 32
#: Tokens start with this, so a leaked one is recognisable (e.g. by secret scanners).
TOKEN_PREFIX = "awe_"


class WebToken(Base):
    """A user's API token (its hash only)."""

    __tablename__ = "awe_web_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("awe_users.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never its secret."""

    id: int
    username: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(database: Database, username: str, label: str = "") -> tuple[int, str]:
    """Make a token for ``username``; return its id and its secret (shown only now)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    owner = user_id(database, username)

    def write(session) -> int:
        token = WebToken(user_id=owner, sha256=token_hash(secret), label=label)
        session.add(token)
        session.flush()
        return token.id

    return database.run(write), secret


def user_of_token(database: Database, secret: str) -> str | None:
    """The user a valid (not revoked) token belongs to, or ``None``; notes its use."""
    with database.session() as session:
        token = session.scalar(
            select(WebToken).where(
                WebToken.sha256 == token_hash(secret), WebToken.revoked.is_(False)
            )
        )
        if token is None:
            return None
        token.last_used_at = utcnow()
        return token.user.name


def list_tokens(database: Database, username: str | None = None) -> list[TokenInfo]:
    """Tokens (of ``username``, or everyone's), oldest first."""
    query = select(WebToken, User.name).join(User).order_by(WebToken.id)
    if username is not None:
        query = query.where(User.name == username)
    with database.session() as session:
        return [
            TokenInfo(t.id, name, t.label, t.created_at, t.last_used_at, t.revoked)
            for t, name in session.execute(query)
        ]


def revoke_token(database: Database, token_id: int, username: str) -> None:
    """Revoke token ``token_id`` of ``username`` (a user revokes only her own tokens)."""
    with database.session() as session:
        token = session.get(WebToken, token_id)
        found = token is not None and token.user.name == username
        if found:
            token.revoked = True
    if not found:
        mine = [t.id for t in list_tokens(database, username)]
        raise LookupError(
            f"{username} has no token {token_id}; their tokens: {mine or 'none'} "
            f"(awe web token --list)"
        )
