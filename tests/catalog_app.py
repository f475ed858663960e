"""An app with resources, templates, prompts and completion hooks, for the tests."""

from __future__ import annotations

import enum
from typing import Any, Literal

from iccm_network import App, Message


class Colour(enum.Enum):
    """A colour, completed by itself."""

    RED = "red"
    ROSE = "rose"
    BLUE = "blue"


NOTES: dict[str, str] = {"todo": "buy milk", "ideas": "a diagram tool", "tables": "| a |"}


def build_app() -> App:
    """A fresh app (each test changes nothing shared)."""
    app = App("catalog", version="1.0.0")
    notes = dict(NOTES)

    @app.resource("config://app", mime_type="application/json", title="Settings")
    def settings() -> dict[str, Any]:
        """The app's settings."""
        return {"notes": len(notes)}

    @app.resource("note://{name}")
    def note(name: str) -> str:
        """One note.

        Args:
            name: The note's name.
        """
        if name not in notes:
            raise FileNotFoundError(name)
        return notes[name]

    @app.resource("blob://{size}")
    async def blob(size: int) -> bytes:
        """``size`` bytes counting up.

        Args:
            size: How many bytes.
        """
        return bytes(range(size))

    @app.resource("tree://{+path}")
    def tree(path: str) -> str:
        """Echo a path that may hold slashes.

        Args:
            path: The path.
        """
        return path

    @app.prompt(title="Paint")
    def paint(colour: Colour, times: int = 1, mood: Literal["calm", "cross"] = "calm") -> str:
        """Ask for a painting.

        Args:
            colour: The main colour.
            times: How many coats.
            mood: The painter's mood.
        """
        return f"Paint it {colour.value} {times} times, {mood}ly."

    @app.prompt
    async def chat(topic: str) -> list[Message]:
        """A short exchange.

        Args:
            topic: What to talk about.
        """
        return [Message(f"Tell me about {topic}."), Message("Gladly.", role="assistant")]

    @app.complete("note://{name}", "name")
    def note_names(value: str) -> list[str]:
        return sorted(name for name in notes if name.startswith(value))

    @app.complete("chat", "topic")
    async def topics(value: str, context: dict[str, str]) -> list[str]:
        return [f"{value}{n}" for n in range(150)]

    @app.tool
    async def edit(name: str, text: str) -> str:
        """Change a note and tell its subscribers.

        Args:
            name: The note.
            text: Its new text.
        """
        notes[name] = text
        await app.notify_resource_updated(f"note://{name}")
        return "ok"

    return app
