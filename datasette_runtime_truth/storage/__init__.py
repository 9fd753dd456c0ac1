"""The files on disk: what kind of file a path is, the timeline store, the debug
routes' reads of turns.db, and the id lookups."""
