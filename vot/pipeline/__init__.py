"""The submission state machine (``machine``) and where a submission is (``status``)."""
