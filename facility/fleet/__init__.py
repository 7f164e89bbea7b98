"""The administrator's fleet view: ``labedge fleet status`` and the dashboard ``labedge fleet serve``."""
