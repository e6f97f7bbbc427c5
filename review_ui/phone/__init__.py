"""The patient's side: their page ``/p/TOKEN`` and the tus upload endpoint."""
