"""Triage: a score becomes an auto-accept / review / reject band (``bands``), and the bands are
recalibrated from supervisors' verdicts (``calibrate``)."""
