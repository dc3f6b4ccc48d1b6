"""Operations: backups and their verification, cleanups, retention, health checks."""
