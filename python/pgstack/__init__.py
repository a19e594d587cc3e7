"""pgstack: a durable job queue inside PostgreSQL."""
