"""Intake: a video comes in (a resumable upload or `vot submit`), is checked, stored and recorded.

upload (``uploads``, ``writes``, ``metadata``, ``finish``, ``expiry``) -> ingest (``ingest``) ->
handed to the queue (``submit``).
"""
