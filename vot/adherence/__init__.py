"""Adherence: the definitions (``rules``), the same in SQL for many patients (``ledger``), the
analysts' snapshot and dashboard figures (``analytics``) and exports (``export``)."""
