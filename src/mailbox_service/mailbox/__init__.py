"""Portal API: what a customer sees of their documents, and their delivery preferences."""
