"""The REST facade: HTTP in, OMS service commands and read-side queries out (issue 5)."""
