"""The job database: SQLAlchemy 2 models (:mod:`awe.db.models`), engine and sessions
(:mod:`awe.db.engine`), Alembic migrations (:mod:`awe.db.schema`) and job records
(:mod:`awe.db.jobs`).

SQLite (the embedded default) and MySQL/MariaDB through PyMySQL are both first class.
Submodules are imported on use so that ``import awe.db.url`` stays light.
"""
