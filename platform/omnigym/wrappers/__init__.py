"""Gymnasium wrappers that work on any omnigym (or plain gymnasium) environment."""
from omnigym.wrappers.record_episodes import RecordEpisodes

__all__ = ["RecordEpisodes"]
