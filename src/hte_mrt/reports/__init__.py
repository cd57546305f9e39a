"""Reports: tables, figures and documents built from results objects (never refits models)."""
