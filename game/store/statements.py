"""The tree queries of `GameRepo`, built once with bind parameters: building a statement of
this size costs about as much as running it on SQLite, and every page and turn post starts with
one of these."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
)

from game.store.models import Game, Message

# What the story log shows of a message (not its raw model output or memory).
PAGE_COLUMNS = (
    "id",
    "parent_id",
    "depth",
    "role",
    "content",
    "status",
    "state",
    "choices",
    "hint",
    "notice",
    "retryable",
    "retry_at",
    "lore",
    "created_at",
)


# The statements below are built once with bound parameters: building a statement of this
# size costs more than running it (SQLAlchemy's expression construction), and a page must be cheap.


def siblings_statement(
    m: Any,
    value: Any,
    where: ColumnElement[bool] | None,
    newest: bool = False,
) -> ColumnElement[Any]:
    """A scalar subquery over `m`'s siblings (the same parent; the game's roots for a root).

    The CASE keeps both arms index lookups on (game_id, parent_id), on SQLite and PostgreSQL
    alike, where `IS NOT DISTINCT FROM` would not be.
    """
    t = Message.__table__

    def arm(same_parent: ColumnElement[bool]) -> ScalarSelect:
        query = select(value).where(t.c.game_id == bindparam("game_id"), same_parent)
        if where is not None:
            query = query.where(where)
        if value is t.c.id:
            order = (t.c.created_at.desc(), t.c.id.desc()) if newest else (t.c.created_at, t.c.id)
            query = query.order_by(*order).limit(1)
        return query.scalar_subquery()

    return case(
        (m.c.parent_id.is_(None), arm(t.c.parent_id.is_(None))),
        else_=arm(t.c.parent_id == m.c.parent_id),
    )


# The hot reads are built once, with bind parameters: building a statement costs about as
# much as running it on SQLite (each page and turn post starts with one of these).
@lru_cache(maxsize=2)
def game_statement(with_head: bool = False) -> Select:
    """The player's game by id (`game_id`, `player_id`), optionally with its head message."""
    if with_head:
        query = select(Game, Message).outerjoin(Message, Message.id == Game.head_id)
    else:
        query = select(Game)
    return query.where(Game.id == bindparam("game_id"), Game.player_id == bindparam("player_id"))


@lru_cache(maxsize=1)
def message_statement() -> Select:
    """A message by id (`message_id`) within its game (`game_id`)."""
    return select(Message).where(
        Message.id == bindparam("message_id"), Message.game_id == bindparam("game_id")
    )


@lru_cache(maxsize=1)
def page_statement() -> Select:
    """One page of a branch with each message's place among its alternatives."""
    t = Message.__table__
    m = t.alias("m")
    path = ancestors_cte(limited=True)
    earlier = or_(
        t.c.created_at < m.c.created_at,
        and_(t.c.created_at == m.c.created_at, t.c.id < m.c.id),
    )
    later = or_(
        t.c.created_at > m.c.created_at,
        and_(t.c.created_at == m.c.created_at, t.c.id > m.c.id),
    )
    return (
        select(
            *(m.c[name] for name in PAGE_COLUMNS),
            siblings_statement(m, func.count(), None).label("alt_count"),
            siblings_statement(m, func.count(), earlier).label("alt_index"),
            siblings_statement(m, t.c.id, earlier, newest=True).label("alt_prev"),
            siblings_statement(m, t.c.id, later).label("alt_next"),
        )
        .join(path, m.c.id == path.c.id)
        .order_by(m.c.depth)
    )


@lru_cache(maxsize=8)
def path_statement(columns: tuple[str, ...]) -> Select:
    t = Message.__table__
    path = ancestors_cte(limited=True)
    return (
        select(*(t.c[name] for name in columns)).join(path, t.c.id == path.c.id).order_by(t.c.depth)
    )


@lru_cache(maxsize=2)
def branch_statement(limited: bool) -> Select:
    path = ancestors_cte(limited)
    return select(Message).join(path, Message.id == path.c.id).order_by(Message.depth)


@lru_cache(maxsize=2)
def ancestors_cte(limited: bool) -> CTE:
    """A recursive CTE of message `head_id` of game `game_id` and its ancestors (ids).

    With `limited`, at most `limit` of them: the step counter stops the recursion itself, not
    just the result, so a page of a very long game reads a page's worth of rows.
    """
    t = Message.__table__
    path = (
        select(t.c.id, t.c.parent_id, literal(1, Integer).label("n"))
        .where(t.c.id == bindparam("head_id"), t.c.game_id == bindparam("game_id"))
        .cte("path", recursive=True)
    )
    step = select(t.c.id, t.c.parent_id, path.c.n + 1).join(path, t.c.id == path.c.parent_id)
    if limited:
        step = step.where(path.c.n < bindparam("limit"))
    return path.union_all(step)
