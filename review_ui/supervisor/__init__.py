"""The supervisor's side: the review queue, an item, bulk accept, spot checks, media, patients."""
