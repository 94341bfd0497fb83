"""The Chat tab through Textual's Pilot, on real (tiny) chat runs.

Three runs are trained once per module (this module's ``trained``): "talk" (a chat run that answers a word
with the word twice), "babble" (a chat run trained on long replies for a few steps: its greedy reply runs
on to any max length, so there is time to stop it) and "prose" (a language model, which the Chat tab must
not offer). The ``runs`` fixture (tests/tui/conftest.py) points a test's RNNCHAT_CHECKPOINTS at them; its
working directory stays its own tmp_path.
"""

from __future__ import annotations

import random
import shutil
import threading
from pathlib import Path

import pytest
import torch
from conftest import wait_for
from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable, Input, Select

from rnnchat.chat.config import DecodeConfig, Seq2SeqConfig
from rnnchat.chat.session import ChatSession
from rnnchat.events import SampleDone, Token
from rnnchat.lm.config import ModelConfig
from rnnchat.runs.opened import open_chat_model
from rnnchat.safetext import neutralise
from rnnchat.tui import torch_thread
from rnnchat.tui.panes.chat.pane import ChatPane
from rnnchat.tui.widgets.chatlog import ChatMessage
from tui.conftest import RecordingApp, fill, folders_of, train, write_play

pytestmark = pytest.mark.usefixtures("no_speed_probe")     # the whole app, whose Train tab would probe

ALPHABET = "abcdefgh"
HOSTILE = "[bold]x[/] \x1b[31m ab\x00c"


def words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 5))))
    return sorted(out)


def reply_text(session: ChatSession, message: str, cfg: DecodeConfig) -> tuple[str, SampleDone]:
    events = list(session.reply(message, cfg))
    return "".join(e.text for e in events if isinstance(e, Token)), events[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chat-runs")
    play = write_play(root, 100)
    talk = root / "talk.tsv"
    talk.write_text("prompt\treply\n" + "".join(f"{w}\t{w} {w}\n" for w in words(200, 1)), encoding="utf-8")
    babble = root / "babble.tsv"
    babble.write_text("prompt\treply\n" + "".join(f"{w}\t{' '.join([w] * 10)}\n" for w in words(200, 2)),
                      encoding="utf-8")
    seq2seq = Seq2SeqConfig(layers=1, hidden=32, embed=16, dropout=0.0, context_turns=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # tiny models: one thread is fastest, and immune to a busy machine
    try:
        with folders_of(root):
            train("prose", play, ModelConfig(layers=1, hidden=24, embed=8, dropout=0.0), seq_len=16, batch_size=8,
                  max_steps=10, eval_every=10, eval_chars=500, sample_length=10)
            for name, corpus, steps in (("babble", babble, 30), ("talk", talk, 20)):     # "talk" is the newest
                train(name, corpus, seq2seq, task="chat", max_steps=steps, eval_every=steps, batch_size=16,
                      lr=1e-2, warmup_steps=5, sample_length=20, val_fraction=0.1)
            # The premise of the stop test: babble's greedy reply does not end by itself.
            babble = ChatSession(open_chat_model("babble"))
            _, done = reply_text(babble, "abc", DecodeConfig(temperature=0, max_length=300, candidates="model"))
            assert done.reason == "length"
    finally:
        torch.set_num_threads(threads)
    return root


async def open_chat(pilot) -> ChatPane:
    await pilot.press("5")
    pane = pilot.app.query_one(ChatPane)
    await wait_for(pilot, lambda: pilot.app.focused is pane.query_one("#chat-input"), what="input focus")
    return pane


async def send(pilot, pane: ChatPane, text: str) -> None:
    pane.query_one("#chat-input", Input).value = text
    await pilot.press("enter")


async def wait_reply(pilot, pane: ChatPane) -> ChatMessage:
    await wait_for(pilot, lambda: not pane.replying, what="the reply to end")
    await pilot.pause()
    return pane.messages[-1]


def notes_with(app: RecordingApp, text: str, severity: str | None = None) -> list[str]:
    return [m for m, s in app.notes if text in m and (severity is None or s == severity)]


def mark(message: ChatMessage) -> Text:
    """The word on a reply's lower edge (Textual keeps a border subtitle as markup)."""
    return Text.from_markup(str(message.border_subtitle or ""))


def model_replies(pane: ChatPane) -> None:
    """Choose the model's own replies in the toolbar (retrieval is the default)."""
    pane.query_one("#chat-candidates", Select).value = "model"


# ------------------------------------------------------------------------------------------- tests


async def test_chat_runs_only_and_replies_equal_the_session(runs):
    greedy = DecodeConfig(temperature=0, max_length=40, candidates="model")
    beam = DecodeConfig(temperature=0, beam=3, max_length=40, candidates="model")
    reference = ChatSession(open_chat_model("talk"))
    first, first_done = reply_text(reference, "abc", greedy)
    second, _ = reply_text(reference, "hgfe", beam)      # the second reply also reads the first turn
    assert first
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_chat(pilot)
        assert pane._option_values == ["talk", "babble"]          # chat runs only, newest first
        assert pane.query_one("#chat-run").selection == "talk"
        fill(pane, temperature="0", max_length="40")
        model_replies(pane)

        # Bad settings are a notification, and the message stays to be sent again.
        fill(pane, beam="0")
        await send(pilot, pane, "abc")
        assert notes_with(app, "beam must be a whole number from 1 to 64", "error")
        assert not pane.messages and pane.query_one("#chat-input", Input).value == "abc"
        fill(pane, beam="1")

        await pilot.press("enter")
        bot = await wait_reply(pilot, pane)
        user = pane.messages[0]
        assert (user.who, user.text, bot.who, bot.text) == ("you", "abc", "bot", first)
        assert bot.shown == neutralise(first) + ("" if first_done.reason == "stop" else " [max length]")
        assert pane.last_reason == first_done.reason and f"{first_done.reason}:" in pane.status_text
        assert pane.query_one("#chat-input", Input).value == ""
        assert user.has_class("-you") and bot.has_class("-bot") and user.parent.has_class("-you")

        fill(pane, beam="3")
        await send(pilot, pane, "hgfe")
        bot = await wait_reply(pilot, pane)
        assert [m.text for m in pane.messages] == ["abc", first, "hgfe", second]
        assert pane._session.history == reference.history
        assert not [n for n in app.notes if n[1] == "error" and "beam" not in n[0]]

        # Choosing another run starts a new chat with it.
        pane.query_one("#chat-run").value = "babble"
        await pilot.pause()
        assert pane.messages == [] and pane.conversation_run == "babble" and notes_with(app, "new chat with babble")
        await wait_for(pilot, lambda: pane._session.run.name == "babble" and pane._session.history == [],
                       what="babble's session")


async def test_escape_stops_a_long_reply_enter_waits_and_ctrl_n_clears(runs, monkeypatch):
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_chat(pilot)
        pane.open_run("babble")
        fill(pane, temperature="0", max_length="100000")
        model_replies(pane)
        await send(pilot, pane, "abc")
        await wait_for(pilot, lambda: pane.state == "streaming" and pane.messages[-1].text,
                       what="the reply to stream")
        # Enter while a reply streams is ignored; the text stays in the input.
        await send(pilot, pane, "later")
        assert notes_with(app, "enter is ignored", "warning")
        assert len(pane.messages) == 2 and pane.query_one("#chat-input", Input).value == "later"
        # The temperature of the running reply follows the input.
        fill(pane, temperature="0.5")
        await pilot.pause()
        assert pane.controls.temperature == 0.5
        await pilot.press("escape")
        bot = await wait_reply(pilot, pane)
        assert pane.controls.stop_requested and pane.last_reason == "cancelled"
        assert 0 < len(bot.text) < 100_000
        assert bot.shown.endswith(" [stopped]") and bot.shown[:-len(" [stopped]")] == neutralise(bot.text)
        assert pane._session.history == [("you", "abc"), ("bot", bot.text)]   # the partial reply is kept
        assert "cancelled" in pane.status_text

        await pilot.press("ctrl+n")
        await pilot.pause()
        assert pane.messages == []
        await wait_for(pilot, lambda: pane._session.history == [], what="the session to forget")
        await pilot.press("ctrl+e")
        assert notes_with(app, "nothing to export", "warning") and pane.exported_path is None
        assert app.focused is pane.query_one("#chat-input") and not pane.replying

        # While training holds the torch thread a reply waits (and says why); escape ends it at once,
        # and the exchange is recorded, empty, when the thread comes to it.
        release = threading.Event()
        torch_thread.submit(release.wait, 60)
        try:
            app.training = True          # what the Train pane tells the app while it trains
            await send(pilot, pane, "abc")
            assert notes_with(app, "Training is using the model thread", "warning")
            await pilot.pause(0.3)
            bot = pane.messages[-1]
            assert pane.state == "waiting" and bot.shown == "\u2026"
            await pilot.press("escape")
            assert not pane.replying and bot.shown == "[stopped]"
        finally:
            release.set()
        await wait_for(pilot, lambda: pane._session.history == [("you", "abc"), ("bot", "")],
                       what="the cancelled exchange to be recorded")


async def test_hostile_text_is_literal_unknown_characters_marked_and_export(runs, isolated_paths):
    reference = ChatSession(open_chat_model("talk"))
    expected, _ = reply_text(reference, HOSTILE, DecodeConfig(temperature=0, max_length=30, candidates="model"))
    unknown = reference.unknown_chars(HOSTILE)
    assert "\x1b" in unknown and "[" in unknown and "a" not in unknown
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_chat(pilot)
        fill(pane, temperature="0", max_length="30")
        model_replies(pane)
        await send(pilot, pane, HOSTILE)
        bot = await wait_reply(pilot, pane)
        user = pane.messages[0]
        assert user.text == HOSTILE and bot.text == expected
        shown = neutralise(HOSTILE)
        assert user.shown == shown and "[bold]x[/]" in shown and "\x1b" not in shown and "\x00" not in shown
        drawn = user.render()
        assert getattr(drawn, "plain", str(drawn)) == shown   # drawn as is: no markup was parsed
        # Unknown characters are marked (styled), known ones are not; one notification says how many.
        text = user.build()
        marked = {i for span in text.spans for i in range(span.start, span.end)}
        assert marked == {i for i, c in enumerate(HOSTILE) if c in unknown}
        assert notes_with(app, f"{len(unknown)} characters unknown to the model", "warning")
        assert len(notes_with(app, "unknown to the model")) == 1

        await pilot.press("ctrl+e")
        path = pane.exported_path
        assert path is not None and path.parent == isolated_paths and path.name.startswith("chat-talk-")
        assert path.suffix == ".md" and notes_with(app, str(path))
        md = path.read_text(encoding="utf-8")
        assert md == reference.transcript_markdown()
        assert md.startswith("# Chat with talk") and f"> {HOSTILE}" in md and "**You:**" in md


async def test_no_chat_run_explains_and_runs_tab_opens_chat_runs(isolated_paths, trained):
    checkpoints = isolated_paths / "checkpoints"
    shutil.copytree(trained / "checkpoints" / "prose", checkpoints / "prose")
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        await pilot.pause()
        pane = app.query_one(ChatPane)
        assert pane.has_class("-empty") and pane._option_values == []
        empty = pane.query_one("#chat-empty")
        assert empty.display and "rnnchat train dialogues --task chat" in ChatPane.EMPTY_MESSAGE
        assert "rnnchat train dialogues --task chat" in str(empty.render())
        assert not pane.query_one("#chat-input").display
        await pilot.press("ctrl+e")
        assert notes_with(app, "nothing to export", "warning")

        # A chat run appears when the tab is shown again; Enter on it in the Runs tab opens it here.
        shutil.copytree(trained / "checkpoints" / "talk", checkpoints / "talk")
        await pilot.press("4")
        await pilot.pause()
        table = app.query_one(DataTable)
        assert table.row_count == 2
        names = [str(table.get_row_at(i)[0]) for i in range(2)]
        table.move_cursor(row=names.index("talk"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one("TabbedContent").active == "chat", what="the chat tab")
        await wait_for(pilot, lambda: app.focused is pane.query_one("#chat-input"), what="input focus")
        assert not pane.has_class("-empty") and pane._option_values == ["talk"]
        assert pane.query_one("#chat-run").selection == "talk"
        await wait_for(pilot, lambda: "vocab" in pane.status_text, what="the run to load")
        assert not [n for n in app.notes if n[1] == "error"], app.notes   # Generate did not try it

        # The command palette offers chat runs as "Open chat run", which opens the Chat tab.
        await app.action_show_tab("corpus")
        await pilot.pause()
        assert app.query_one("TabbedContent").active == "corpus"
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"open chat run: talk")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.query_one("TabbedContent").active == "chat", what="the chat tab")


async def test_retrieval_by_default_each_reply_marked_and_ctrl_r_switches(runs):
    from rnnchat.runs.retrieval import open_retriever

    reference = ChatSession(open_chat_model("talk"))
    reference.retriever = open_retriever(reference.run.meta, "talk")
    prompt = reference.retriever.pairs[3].prompt
    expected, done = reply_text(reference, prompt, DecodeConfig(max_length=40))
    assert expected in {p.reply for p in reference.retriever.pairs} and done.source == "retrieved"
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_chat(pilot)
        assert pane.query_one("#chat-candidates", Select).value == "retrieval"     # the default
        fill(pane, max_length="40")
        await send(pilot, pane, prompt)
        reply = await wait_reply(pilot, pane)
        assert reply.text == expected and not notes_with(app, "", "error") and not notes_with(app, "", "warning")
        # The mark: one dim word on the bubble's lower edge, not part of the reply's text.
        assert reply.source == "retrieved" and reply.shown == neutralise(expected)
        assert mark(reply).plain == "retrieved" and all(Style.parse(str(s.style)).dim for s in mark(reply).spans)
        assert "retrieved" in app.export_screenshot()
        await send(pilot, pane, "12345")                 # like no training prompt: the model writes the reply
        reply = await wait_reply(pilot, pane)
        assert reply.source == "model" and mark(reply).plain == "model"
        assert pane.messages[1].source == "retrieved"   # each reply keeps its own mark

        await pilot.press("ctrl+r")                       # the key, as the toolbar's Select
        await pilot.pause()
        assert pane.query_one("#chat-candidates", Select).value == "model"
        assert notes_with(app, "replies from: model")
        await send(pilot, pane, prompt)
        reply = await wait_reply(pilot, pane)
        assert reply.source == "model" and mark(reply).plain == "model"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert pane.query_one("#chat-candidates", Select).value == "retrieval"


async def test_without_its_corpus_the_default_falls_back_to_the_model_once(isolated_paths):
    for name in ("kept", "gone"):                           # "gone", the newest, is the one first chosen
        corpus = isolated_paths / f"{name}.tsv"
        corpus.write_text("prompt\treply\n" + "".join(f"{w}\t{w} {w}\n" for w in words(60, 3)), encoding="utf-8")
        train(name, corpus, Seq2SeqConfig(layers=1, hidden=16, embed=8, dropout=0.0, context_turns=0), task="chat",
              max_steps=4, eval_every=4, batch_size=8, sample_length=0, val_fraction=0.1)
    corpus.unlink()
    candidates = lambda: pane.query_one("#chat-candidates", Select).value  # noqa: E731
    app = RecordingApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = await open_chat(pilot)
        assert pane.query_one("#chat-run").selection == "gone"
        fill(pane, max_length="10")
        for message in ("abc", "bcd"):
            await send(pilot, pane, message)
            reply = await wait_reply(pilot, pane)
            assert reply.ending != "failed" and reply.source == "model", app.notes
        notes = notes_with(app, "replying with the model's own replies", "warning")
        assert len(notes) == 1 and "the run's corpus is not here" in notes[0], app.notes
        assert candidates() == "model" and not notes_with(app, "", "error")
        # The fallback was for that run: another one whose dialogue is here gets the default again.
        pane.query_one("#chat-run").value = "kept"
        await pilot.pause()
        assert candidates() == "retrieval"
        await send(pilot, pane, "abc")
        reply = await wait_reply(pilot, pane)
        assert reply.ending != "failed" and reply.source in ("retrieved", "model") and not notes_with(app, "", "error")
        assert len(notes_with(app, "replying with the model's own replies")) == 1
        # Retrieval chosen by the user, when it cannot work, is an error and no reply.
        pane.query_one("#chat-run").value = "gone"
        await pilot.pause()
        await pilot.press("ctrl+r", "ctrl+r")          # to model and back: chosen
        await pilot.pause()
        assert candidates() == "retrieval"
        await send(pilot, pane, "cde")
        reply = await wait_reply(pilot, pane)
        assert reply.ending == "failed" and not reply.source
        assert notes_with(app, "retrieval needs the training dialogue of run 'gone'", "error")
        assert len(notes_with(app, "replying with the model's own replies")) == 1
