"""Nightly reconciliation of our books against the venue's trade report.

Pure parts (no I/O): ``model`` (the typed inputs and breaks), ``matcher`` (trade by trade), ``checks``
(positions and cash), ``repair`` (what is safe to book). The parts with I/O sit beside them: ``report_file``
reads the venue's CSV, ``venue_fetch`` asks the venue over FIX, ``loader`` reads our database, ``runner`` ties
one run together and ``output`` renders it.
"""
