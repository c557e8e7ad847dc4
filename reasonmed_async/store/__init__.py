"""The SQLite checkpoint store: the journal, the tierer's join, the response cache, the owner lock."""
