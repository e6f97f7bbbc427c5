"""Background workers: transcoding and scoring of submitted videos."""
