"""Channels: ``[track/]risk[/branch]`` as snapd and the store spell them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ucimage.store.errors import ChannelError

#: risks from most to least stable; an unreleased channel follows the next more stable one
RISKS: tuple[str, ...] = ("stable", "candidate", "beta", "edge")
_TRACK = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,27})$")
_BRANCH = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,127})$")


@dataclass(frozen=True, order=True)
class Channel:
    track: str
    risk: str
    branch: str = ""

    @property
    def name(self) -> str:
        """Full form, ``track/risk[/branch]``."""
        base = f"{self.track}/{self.risk}"
        return f"{base}/{self.branch}" if self.branch else base

    @property
    def short(self) -> str:
        """Short form: ``latest/`` dropped, as ``effective-channel`` shows it."""
        base = self.risk if self.track == "latest" else f"{self.track}/{self.risk}"
        return f"{base}/{self.branch}" if self.branch else base

    def __str__(self) -> str:
        return self.name

    def fallbacks(self) -> list[Channel]:
        """This channel then the more stable ones it follows when nothing is released to it."""
        if self.branch:
            return [self, *Channel(self.track, self.risk).fallbacks()]
        idx = RISKS.index(self.risk)
        return [Channel(self.track, r) for r in reversed(RISKS[: idx + 1])]


def parse_channel(text: str, default_track: str = "latest") -> Channel:
    """Parse ``risk``, ``track``, ``track/risk``, ``risk/branch`` or ``track/risk/branch``."""
    if not isinstance(text, str) or not text or text.strip() != text:
        raise ChannelError(f"invalid channel {text!r}")
    parts = text.split("/")
    track, risk, branch = default_track, "", ""
    if len(parts) == 1:
        if parts[0] in RISKS:
            risk = parts[0]
        else:
            track, risk = parts[0], "stable"
    elif len(parts) == 2:
        if parts[0] in RISKS:
            risk, branch = parts
        else:
            track, risk = parts
    elif len(parts) == 3:
        track, risk, branch = parts
    else:
        raise ChannelError(f"invalid channel {text!r}: too many '/'")
    if risk not in RISKS:
        raise ChannelError(
            f"invalid channel {text!r}: invalid risk {risk!r}",
            hint=f"the risk is one of {', '.join(RISKS)}",
        )
    if not _TRACK.match(track) or track in RISKS:
        raise ChannelError(f"invalid channel {text!r}: invalid track {track!r}")
    if branch and not _BRANCH.match(branch):
        raise ChannelError(f"invalid channel {text!r}: invalid branch {branch!r}")
    return Channel(track, risk, branch)
