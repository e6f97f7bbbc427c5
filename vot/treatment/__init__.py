"""The treatment course: regimens as data, each patient's course and its changes, the day
ledger (what each day of the course holds), doses watched in person or confirmed by phone."""
