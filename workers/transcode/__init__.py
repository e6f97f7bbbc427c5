"""The transcode stage: the browser-playable review copy and poster of an upload."""
