"""The play loop over HTTP: turns, SSE streaming and resuming, Stop, bad input, isolation."""

import html
import json
import re
import signal
import sqlite3
import time

import pytest

from tests.appserver import Player, Server
from tests.databases import on_postgres
from tests.test_art import wait_for_art


def choice_labels(page: str) -> list[str]:
    group = page.split('aria-label="Choices"', 1)[1].split("</div>", 1)[0]
    return re.findall(r"</kbd><span>([^<]+)</span>", group)


def meters(page: str) -> dict[str, int]:
    return {
        name: int(value)
        for name, value in re.findall(r'id="meter-(\w+)".*?aria-valuenow="(\d+)"', page, re.S)
    }


def test_opening_streams_then_choices_hint_and_state(player: Player) -> None:
    game = player.new_game(name="Mara Quill", cast="pim")
    page = player.play_page(game)
    assert 'role="log"' in page
    narration = player.finish_turn(game)
    assert "Mara Quill" in narration and "Pim" in narration
    page = player.play_page(game)
    assert "data-stream-url" not in page
    assert choice_labels(page) == [
        "Knock at the harbourmaster&#39;s tower",
        "Row out toward the glint",
        "Ask the lantern-makers about the chapel",
    ]
    assert 'role="region" aria-label="Hint"' in page and 'aria-label="Story state"' in page
    assert meters(page) == {"resolve": 60, "suspicion": 20, "tide": 45}


def test_choice_and_typed_action_make_new_turns_that_move_state(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    before = player.play_page(game)
    response = player.post(f"/games/{game}/turns", {"choice": "c1"}, htmx=True)
    assert response.status_code == 200
    assert "Row out toward the glint" in response.text  # the player's message
    assert "data-stream-url" in response.text and 'hx-swap-oob="true"' in response.text
    narration = player.finish_turn(game)
    assert "row out toward the glint" in narration.lower()
    after = player.play_page(game)
    assert meters(after) != meters(before)
    assert choice_labels(after) != choice_labels(before)
    assert 2 <= len(choice_labels(after)) <= 4

    response = player.post(f"/games/{game}/turns", {"action": "I whistle a sea shanty"})
    assert response.status_code == 303
    assert "whistle a sea shanty" in player.finish_turn(game)
    page = player.play_page(game)
    assert page.count('class="msg msg--player"') == 2
    assert page.count('class="msg msg--narrator msg--done"') == 3
    assert re.search(rf'href="/games/{game}".*?2 turns ·', player.get("/").text, re.S)


def test_a_post_asking_for_events_streams_its_turn_in_its_own_response(player: Player) -> None:
    # What the page's script does: the first words come on the post's own connection.
    game = player.new_game()
    player.finish_turn(game)
    events = player.post_events(f"/games/{game}/turns", {"action": "I count the lanterns"})
    started, panels, *deltas, done = events
    assert started[0] == "started" and panels[0] == "panels" and done[0] == "done"
    reply = started[1]
    assert "I count the lanterns" in started[2]  # the player's message, then the live reply
    assert f'id="msg-{reply}"' in started[2] and "data-stream-url" in started[2]
    assert "hx-swap-oob" not in started[2]  # the article alone: it goes in first
    # Then the panels, all out of band: the Stop button replaces the composer.
    assert f'action="/games/{game}/messages/{reply}/stop"' in panels[2]
    assert panels[2].count('hx-swap-oob="true"') == 3  # choices, controls, flash
    assert all(name == "delta" for name, _, _ in deltas)
    # The fragment may already hold some or (when the post waited for its commit, as on
    # PostgreSQL) all of the words: the deltas go on from its offset.
    offset = int(re.search(r'data-offset="(\d+)"', started[2]).group(1))  # type: ignore[union-attr]
    shown = re.search(r'<span class="live-text">([^<]*)</span>', started[2]).group(1)  # type: ignore[union-attr]
    shown = html.unescape(shown)
    assert len(shown) == offset
    streamed = shown + "".join(json.loads(data) for _, _, data in deltas)
    if deltas:  # ids are text offsets, as on the turn's stream
        assert int(deltas[-1][1]) == len(streamed)
    stored = html.unescape(re.sub(r"<[^>]+>", " ", player.finish_turn(game)))  # as saved
    assert stored.split() == streamed.split()
    assert "count the lanterns" in streamed.lower()


def test_a_refused_post_asking_for_events_gets_its_readable_error(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    form = {"action": "   ", "_csrf_token": player.csrf()}
    headers = {"HX-Request": "true", "Accept": "text/event-stream"}
    response = player.client.post(f"/games/{game}/turns", data=form, headers=headers)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "Write what you do" in response.text


def test_final_fragment_carries_out_of_band_panels(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    head = player.head_id(game)
    fragment = player.get(f"/games/{game}/messages/{head}", headers={"HX-Request": "true"}).text
    for part in ['id="choices"', 'id="controls"', 'id="hint"', 'id="story-state"', 'id="scene"']:
        assert part in fragment
    assert fragment.count('hx-swap-oob="true"') == 5


def test_resumed_stream_neither_repeats_nor_loses_text(slow_server: Server) -> None:
    player = Player(slow_server)
    game = player.new_game()
    head = player.head_id(game)
    first = player.stream(game, head, max_events=5)
    assert all(event == "delta" for event, _, _ in first)
    offset = first[-1][1]
    # a reconnect sends Last-Event-ID; the stream carries on from there
    rest = player.stream(game, head, last_event_id=offset)
    text = "".join(json.loads(d) for e, _, d in first + rest if e == "delta")
    assert rest[-1][0] == "done"
    assert text.strip() == player.finish_turn(game)
    assert player.head_id(game) == head  # no new turn was started


def test_reload_mid_stream_renders_partial_text_with_its_offset(slow_server: Server) -> None:
    player = Player(slow_server)
    game = player.new_game()
    time.sleep(0.8)
    page = player.play_page(game)
    offset = int(re.search(r'data-offset="(\d+)"', page).group(1))
    partial = re.search(r'<span class="live-text">(.*?)</span>', page, re.S).group(1)
    assert offset > 0 and len(partial) >= offset * 0.9
    head = player.head_id(game)
    rest = "".join(
        json.loads(d) for e, _, d in player.stream(game, head, offset=offset) if e == "delta"
    )
    done = player.play_page(game)
    assert done.count('class="msg msg--narrator') == 1
    full = re.search(r'<div class="narration">(.*?)</div>', done, re.S).group(1)
    assert rest and rest.strip().split()[-1].replace("'", "&#39;") in full


def test_stop_keeps_partial_text_marked_stopped(slow_server: Server) -> None:
    player = Player(slow_server)
    game = player.new_game()
    head = player.head_id(game)
    player.stream(game, head, max_events=10)
    response = player.post(f"/games/{game}/messages/{head}/stop", htmx=True)
    assert response.status_code == 204
    page = player.play_page(game)
    assert "msg--stopped" in page and "Stopped" in page
    text = re.search(r'<div class="narration">(.*?)</div>', page, re.S).group(1)
    assert 0 < len(text) < 700
    assert choice_labels(page)  # the player can go on
    assert "Write this turn again" in page
    assert player.stream(game, head)[-1][0] == "done"


def test_stop_right_after_posting_stops_the_new_turn(slow_server: Server) -> None:
    """An htmx post answers before the turn's rows are committed; Stop must still find it."""
    player = Player(slow_server)
    game = player.new_game()
    player.finish_turn(game)
    started = player.post(f"/games/{game}/turns", {"action": "I wait by the door"}, htmx=True)
    assert started.status_code == 200
    reply = re.search(r'data-stream-url="/games/\w+/messages/(\w+)/stream"', started.text)
    assert reply is not None
    stop = player.post(f"/games/{game}/messages/{reply.group(1)}/stop", htmx=True)
    assert stop.status_code == 204
    assert player.stream(game, reply.group(1))[-1][0] == "done"
    page = player.play_page(game)
    assert player.head_id(game) == reply.group(1)
    assert "msg--stopped" in page and "I wait by the door" in page


@pytest.mark.skipif(on_postgres(), reason="the refusing trigger is written for SQLite")
@pytest.mark.parametrize("htmx", [True, False])
def test_a_turn_the_database_refuses_says_so_and_loses_nothing(
    own_server: Server, htmx: bool
) -> None:
    """A post answers after its commit; when that commit fails, the player is told why."""
    player = Player(own_server.start())
    game = player.new_game()
    player.finish_turn(game)
    before = player.head_id(game)
    db = sqlite3.connect(own_server.data_dir / "arcadia.sqlite")  # the database itself refuses
    db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.content = 'Refuse me' "
        "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
    )
    db.commit()
    db.close()
    refused = player.post(f"/games/{game}/turns", {"action": "Refuse me"}, htmx=htmx)
    assert refused.status_code == 503
    assert "The game could not save this turn. Reload the page, then try again." in refused.text
    assert player.head_id(game) == before
    page = player.play_page(game)
    assert "Refuse me" not in page and "msg--streaming" not in page
    again = player.post(f"/games/{game}/turns", {"action": "I try the door"}, htmx=htmx)
    assert again.status_code == (200 if htmx else 303)
    player.finish_turn(game)
    assert "I try the door" in player.play_page(game)


def test_retry_writes_the_turn_again(slow_server: Server) -> None:
    player = Player(slow_server)
    game = player.new_game()
    head = player.head_id(game)
    player.post(f"/games/{game}/messages/{head}/stop")
    assert player.post(f"/games/{game}/messages/{head}/retry").status_code == 303
    new_head = player.head_id(game)
    assert new_head != head
    assert player.finish_turn(game)
    assert "msg--stopped" not in player.play_page(game)


def test_turn_while_streaming_is_409_and_changes_nothing(slow_server: Server) -> None:
    player = Player(slow_server)
    game = player.new_game()
    response = player.post(f"/games/{game}/turns", {"action": "Hurry"}, htmx=True)
    assert response.status_code == 409
    assert "still writing" in response.text
    assert 'class="flash flash--error"' in response.text
    player.finish_turn(game)
    assert "Hurry" not in player.play_page(game)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"action": ""}, "Write what you do"),
        ({"action": "   \n "}, "Write what you do"),
        ({"action": "x" * 10_000}, "the limit is 2,000"),
        ({"choice": "c7"}, "not part of the current turn"),
        ({"choice": "banana"}, "not part of the current turn"),
    ],
)
def test_bad_actions_get_clear_400s_and_lose_nothing(
    player: Player, form: dict, message: str
) -> None:
    game = player.new_game()
    player.finish_turn(game)
    wait_for_art(player, game, "scene__picture")  # the opening's picture, painted meanwhile
    before = player.play_page(game)
    response = player.post(f"/games/{game}/turns", form, htmx=True)
    assert response.status_code == 400
    assert message in response.text
    assert player.play_page(game) == before


def test_other_players_get_404_for_everything(player: Player, other_player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    head = player.head_id(game)
    assert other_player.get(f"/games/{game}").status_code == 404
    assert other_player.get(f"/games/{game}/messages/{head}").status_code == 404
    assert other_player.get(f"/games/{game}/messages/{head}/stream").status_code == 404
    for path, form in [
        (f"/games/{game}/turns", {"action": "steal"}),
        (f"/games/{game}/messages/{head}/stop", {}),
        (f"/games/{game}/messages/{head}/retry", {}),
        (f"/games/{game}/rename", {"title": "mine"}),
        (f"/games/{game}/delete", {}),
    ]:
        assert other_player.post(path, form).status_code == 404, path
    assert f"/games/{game}" not in other_player.get("/").text
    page = player.play_page(game)
    assert "steal" not in page and "mine" not in page


def test_forged_player_cookie_is_a_new_player(player: Player, server: Server) -> None:
    game = player.new_game()
    owner = player.client.cookies["arcadia_player"]
    forged = Player(server)
    forged.client.cookies.set("arcadia_player", owner.split(".")[0] + ".0000")
    assert forged.get(f"/games/{game}").status_code == 404


def test_posts_without_csrf_token_are_403(player: Player) -> None:
    game = player.new_game()
    player.finish_turn(game)
    head = player.head_id(game)
    for path in [
        "/games",
        f"/games/{game}/turns",
        f"/games/{game}/rename",
        f"/games/{game}/delete",
        f"/games/{game}/messages/{head}/stop",
    ]:
        response = player.post(path, {"action": "x", "title": "x"}, csrf=False)
        assert response.status_code == 403, path
        assert "Reload the page" in response.text
    response = player.client.post(
        f"/games/{game}/turns", data={"action": "x", "_csrf_token": "forged"}
    )
    assert response.status_code == 403


def test_non_json_model_output_is_told_and_state_kept(own_server: Server) -> None:
    own_server.env["CHATGAME_MOCK_SCENARIO"] = "non-json"
    own_server.start()
    player = Player(own_server)
    game = player.new_game()
    player.finish_turn(game)
    player.post(f"/games/{game}/turns", {"choice": "c0"})
    narration = player.finish_turn(game)
    assert narration and "{" not in narration
    page = player.play_page(game)
    assert "without the game&#39;s structured part" in page
    assert meters(page) == {"resolve": 60, "suspicion": 20, "tide": 45}
    assert len(choice_labels(page)) >= 2


def test_story_survives_a_crash_mid_turn(process_server: Server) -> None:
    process_server.env["CHATGAME_MOCK_DELAY_MS"] = "40"
    process_server.start()
    player = Player(process_server)
    game = player.new_game()
    head = player.head_id(game)
    player.stream(game, head, max_events=40)
    time.sleep(1.3)  # the partial text is saved about once a second
    process_server.stop(signal.SIGKILL)
    process_server.start()
    page = player.play_page(game)
    assert "msg--interrupted" in page and "stopped while this turn was being written" in page
    text = re.search(r'<div class="narration">(.*?)</div>', page, re.S).group(1)
    assert len(text) > 20
    assert choice_labels(page)
    assert player.post(f"/games/{game}/messages/{head}/retry").status_code == 303
    assert player.finish_turn(game)


def test_sigterm_mid_turn_saves_it_as_interrupted(process_server: Server) -> None:
    # slow enough that the turn outlives uvicorn's graceful wait for open connections
    process_server.env["CHATGAME_MOCK_DELAY_MS"] = "90"
    process_server.start()
    player = Player(process_server)
    game = player.new_game()
    player.stream(game, player.head_id(game), max_events=20)
    process_server.stop(signal.SIGTERM)
    assert "saved 1 running turn(s) as interrupted" in process_server.log(), process_server.log()
    process_server.start()
    page = player.play_page(game)
    assert "msg--interrupted" in page
    assert len(re.search(r'<div class="narration">(.*?)</div>', page, re.S).group(1)) > 20
