"""SillyTavern chats as games: importing one as a new game, exporting a game's branch."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from game.cards.card import normalise_data
from game.cards.chats import Chat, ChatExport, ExportLine
from game.play.characters import new_card_game, opening_state
from game.store.library import LibraryRepo
from game.store.models import Character, Game, Message, new_id, utcnow
from game.store.repo import GameRepo, MessageRow
from game.world.catalog import Catalog


async def _character_for(
    library: LibraryRepo, chat: Chat, character: Character | None
) -> Character:
    """The chosen character, else the library's one of the chat's name, else a new one."""
    if character is not None:
        return character
    name = chat.character_name or "Imported character"
    for existing in await library.characters():
        if existing.name.casefold() == name.casefold():
            return existing
    data = normalise_data({"name": name}, [])
    created = Character(
        id=new_id(),
        player_id=library.player_id,
        name=data["name"],
        data=data,
        extras={},
        warnings=[],
    )
    library.add(created)
    return created


async def import_chat(
    repo: GameRepo,
    library: LibraryRepo,
    catalog: Catalog,
    chat: Chat,
    character: Character | None,
) -> Game:
    """A new card game holding the chat: each swipe becomes an alternative of its message."""
    character = await _character_for(library, chat, character)
    player_name = " ".join(chat.user_name.split())[:40] or "You"
    game = new_card_game(
        repo,
        catalog,
        character,
        player_name=player_name,
        world_id=next(iter(catalog.worlds)),
        card={"own_scenario": True, "chat_header": chat.header},
    )
    state = opening_state(game, catalog)  # imported turns carry no story state of their own
    start = utcnow() - timedelta(seconds=1)
    tick = 0
    parent: Message | None = None
    rows: list[Message] = []
    for line in chat.lines:
        role = "user" if line.is_user else "assistant"
        texts = line.swipes or [line.mes]
        chosen_index = line.swipe_id if line.swipes else 0
        chosen: Message | None = None
        for index, text in enumerate(texts):
            is_chosen = index == chosen_index
            meta: dict[str, Any] = dict(line.other) if is_chosen else {"swipe": True}
            if index < len(line.swipe_info):
                meta["swipe_info"] = line.swipe_info[index]
            meta["had_swipes"] = bool(line.swipes)
            tick += 1
            row = Message(
                id=new_id(),
                game_id=game.id,
                parent_id=parent.id if parent else None,
                depth=parent.depth + 1 if parent else 0,
                role=role,
                status="done",
                content=line.mes if is_chosen else text,
                choices=[] if role == "assistant" else None,
                state=state if role == "assistant" else None,
                meta=meta,
                created_at=start + timedelta(microseconds=tick),
            )
            rows.append(row)
            if is_chosen:
                chosen = row
        parent = chosen
    repo.add(*rows)
    game.head_id = parent.id if parent else None
    game.turn_count = sum(1 for line in chat.lines if line.is_user)
    return game


# What a chat line is made of: not the state snapshots and raw replies the tree also holds.
CHAT_COLUMNS = tuple(
    getattr(Message, name)
    for name in ("id", "parent_id", "role", "content", "status", "meta", "created_at")
)


async def chat_export(repo: GameRepo, game: Game, char: str) -> ChatExport:
    """The game's current branch as a SillyTavern chat, with each message's alternatives.

    `char` names the narrator's messages (the card's character, or the game's companion).
    """
    rows = [m async for chunk in repo.tree_rows(game, CHAT_COLUMNS) for m in chunk]
    by_id = {m.id: m for m in rows}
    children: dict[str | None, list[MessageRow]] = {}
    for m in rows:
        children.setdefault(m.parent_id, []).append(m)
    branch: list[MessageRow] = []
    node = by_id.get(game.head_id or "")
    while node is not None:
        branch.append(node)
        node = by_id.get(node.parent_id or "")
    branch.reverse()
    card = game.card or {}
    header = dict(card.get("chat_header") or {})
    header.update(user_name=game.player_name, character_name=header.get("character_name") or char)
    header.setdefault("create_date", game.created_at.isoformat())
    header.setdefault("chat_metadata", {})
    lines = []
    for m in branch:
        if m.status == "streaming" or not m.content:
            continue
        meta = dict(m.meta or {})
        had_swipes = meta.pop("had_swipes", m.role == "assistant")
        meta.pop("swipe_info", None)
        meta.setdefault("name", game.player_name if m.role == "user" else char)
        meta.setdefault("send_date", m.created_at.isoformat())
        line = ExportLine(mes=m.content, is_user=m.role == "user", other=meta)
        if had_swipes:
            siblings = [s for s in children.get(m.parent_id, []) if s.role == m.role and s.content]
            line.swipes = [s.content for s in siblings]
            line.swipe_id = next(i for i, s in enumerate(siblings) if s.id == m.id)
            infos = [s.meta.get("swipe_info") if s.meta else None for s in siblings]
            line.swipe_info = (
                [i if i is not None else {} for i in infos]
                if any(i is not None for i in infos)
                else []
            )
        lines.append(line)
    return ChatExport(header=header, lines=lines)
