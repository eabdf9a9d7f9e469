"""Order events across processes: a Redis Streams publisher (called after a durable commit) and its reader."""
