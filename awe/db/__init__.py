"""The job database: SQLAlchemy 2 models (:mod:`awe.db.models`), engine and sessions
(:mod:`awe.db.engine`), Alembic migrations (:mod:`awe.db.schema`) and job records
(:mod:`awe.db.jobs`).

SQLite (the embedded default) and MySQL/MariaDB through PyMySQL are both first class.
Submodules are imported on use, so ``import awe.db`` alone costs nothing. Only
:mod:`awe.env`, :mod:`awe.context` and the other bottom modules lie below this package;
frames find the session's database through :mod:`awe.context`, never by importing upwards.
"""
