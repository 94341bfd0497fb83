"""The token under a ``ProbText`` cursor, with the most likely alternatives the model had at that point
and a legend of the colour scale."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from rnnchat.safetext import neutralise, visible_token
from rnnchat.tui.widgets.probtext import BUCKETS, ProbText

__all__ = ["AlternativesPanel", "visible_token"]




class AlternativesPanel(Static):
    """The token under a ProbText cursor, its probability, the top alternatives and a colour legend."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", markup=False, name=name, id=id, classes=classes)
        self.entries: list[tuple[str, float]] = []
        """The alternatives shown now: (token text as produced, probability), most likely first."""
        self.token: tuple[str, float] | None = None

    def show_token(self, probtext: ProbText, index: int | None) -> None:
        """Show token ``index`` of ``probtext`` (None: a hint instead)."""
        out = Text(no_wrap=True, overflow="ellipsis")
        if index is None or index >= probtext.token_count:
            self.entries, self.token = [], None
            out.append("←/→ or click a token\nto see how likely\nit was.\n", style="dim")
        else:
            text, prob, alts = probtext.token_info(index)
            self.token = (text, prob)
            self.entries = list(alts)
            out.append(f"token {index + 1:,} of {probtext.token_count:,}\n", style="dim")
            out.append(visible_token(text), style=probtext.prob_style(prob) + Style(reverse=True))
            out.append(f" {prob:7.2%}\n", style=probtext.prob_style(prob))
            if alts:
                out.append("alternatives\n", style="dim")
                for alt_text, alt_prob in alts:
                    out.append(f"{alt_prob:7.2%} ", style=probtext.prob_style(alt_prob))
                    mark = Style(bold=True) if neutralise(alt_text) == text else Style()
                    out.append(visible_token(alt_text), style=mark)
                    out.append("\n")
            else:
                out.append("no alternatives recorded\n", style="dim")
        out.append("\n")
        out.append_text(self.legend(probtext))
        self.update(out)

    @staticmethod
    def legend(probtext: ProbText) -> Text:
        """A one-line colour scale: 0% ▮▮▮▮▮▮▮▮▮▮ 100%."""
        legend = Text("0% ", style="dim", no_wrap=True)
        for b in range(BUCKETS):
            legend.append("\u2588", style=probtext.prob_style((b + 0.5) / BUCKETS))
        legend.append(" 100%", style="dim")
        return legend
