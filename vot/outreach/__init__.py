"""Keeping patients on treatment: how to reach them, dose reminders, the side effects they
report, and messages between them and their clinic."""
