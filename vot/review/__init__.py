"""The supervisor's review, read and write side: plain functions over a connection.

``scope`` (who sees what), ``queue``, ``item``, ``verdicts``, ``bulk``, ``spotchecks``,
``patients`` (each patient's calendar).
"""
