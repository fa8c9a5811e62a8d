"""Picture prompts, the mock painter and image verification."""

import io

import pytest
from PIL import Image

from game.ai.painters import PaintError, paint_mock_picture, verify_image
from game.play.art import art_prompt, markdown_images, strip_markdown_images, wants_picture
from game.settings import PACKAGE_ROOT
from game.world.catalog import load_catalog

WORLD = load_catalog(PACKAGE_ROOT / "content").worlds["hollowmere"]


def test_prompt_has_scene_and_art_direction_and_no_ui() -> None:
    prompt = art_prompt({"title": "Well", "image_prompt": "a frozen well at dusk"}, WORLD)
    assert "a frozen well at dusk" in prompt
    assert WORLD.art_direction in prompt
    assert "no text" in prompt and "no user interface" in prompt and "no HUD" in prompt


def test_image_modes() -> None:
    assert wants_picture("suggest", {"new_picture": True})
    assert not wants_picture("suggest", {"new_picture": False})
    assert wants_picture("force", {"new_picture": False})
    assert not wants_picture("off", {"new_picture": True})


def test_mock_pictures_are_deterministic_real_pngs() -> None:
    first = paint_mock_picture("a frozen well")
    assert first == paint_mock_picture("a frozen well")
    assert first != paint_mock_picture("a burning ship")
    assert verify_image(first) == "png"


def test_verify_rejects_junk_and_bombs() -> None:
    with pytest.raises(PaintError, match="not a picture"):
        verify_image(b"<html>error</html>")
    huge = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(huge, format="PNG")  # tiny file, 100 megapixels
    with pytest.raises(PaintError, match="absurdly large"):
        verify_image(huge.getvalue())


def test_markdown_images() -> None:
    text = "Done. ![image](/v1/files/a.png) and ![x]( http://h/b.png )"
    assert markdown_images(text) == ["/v1/files/a.png", "http://h/b.png"]
    assert strip_markdown_images(text) == "Done.  and"
