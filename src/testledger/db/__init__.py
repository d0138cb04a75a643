"""Storage: the schema, engines for SQLite and PostgreSQL, migrations and bulk writes."""
