"""vot: video-observed therapy. Phone videos of doses, scored, triaged and reviewed."""

__version__ = "0.1.0"
